#!/usr/bin/python3
"""Drive Debian's os-vif (python3-os-vif, ovs plugin, native ovsdbapp backend) from JSON lines.

vhostplug uses it as its parity reference (tests compare the OVSDB rows it writes) and as
the baseline of `vhostplug bench`. It must run under Debian's /usr/bin/python3.

usage: osvif-driver.py --db unix:/path/db.sock [--timeout 120]
stdin, one JSON object per line:
  {"cmd": "plug"|"unplug", "vif": <os-vif o.vo primitive>, "instance": {"uuid": ..., "name": ...}}
  {"cmd": "quit"}
stdout, one JSON object per line: {"ok": true, "ms": <float>} or {"ok": false, "error": "..."}
The first line printed is {"ready": true, "init_ms": <float>} once os-vif is initialised.
"""
import argparse
import json
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--db', required=True, help='OVSDB endpoint, unix:PATH or tcp:HOST:PORT')
    ap.add_argument('--timeout', type=int, default=120, help='[os_vif_ovs] ovs_vsctl_timeout')
    args = ap.parse_args()

    t0 = time.perf_counter()
    from oslo_config import cfg
    import os_vif
    from os_vif import objects
    from os_vif.objects import base as ovo_base

    os_vif.initialize()
    cfg.CONF.set_override('ovsdb_connection', args.db, group='os_vif_ovs')
    cfg.CONF.set_override('ovsdb_interface', 'native', group='os_vif_ovs')
    cfg.CONF.set_override('ovs_vsctl_timeout', args.timeout, group='os_vif_ovs')
    cfg.CONF.set_override('helper_command', 'privsep-helper', group='vif_plug_ovs_privileged')
    # The overrides only reach the ovs plugin through a re-initialisation.
    os_vif.initialize(reset=True)
    # Privileged calls in-process: no privsep daemon (we already run as root).
    from vif_plug_ovs import privsep as ovs_privsep
    ovs_privsep.vif_plug.set_client_mode(False)
    objects.register_all()
    print(json.dumps({'ready': True, 'init_ms': (time.perf_counter() - t0) * 1000}), flush=True)

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        if req.get('cmd') == 'quit':
            break
        try:
            vif = ovo_base.VersionedObject.obj_from_primitive(req['vif'])
            inst_req = req.get('instance') or {}
            inst = objects.instance_info.InstanceInfo(uuid=inst_req.get('uuid'), name=inst_req.get('name', 'pod'))
            start = time.perf_counter()
            if req['cmd'] == 'plug':
                os_vif.plug(vif, inst)
            elif req['cmd'] == 'unplug':
                os_vif.unplug(vif, inst)
            else:
                raise ValueError('unknown cmd %r' % req.get('cmd'))
            print(json.dumps({'ok': True, 'ms': (time.perf_counter() - start) * 1000}), flush=True)
        except Exception as e:  # report and keep serving
            print(json.dumps({'ok': False, 'error': '%s: %s' % (type(e).__name__, e)}), flush=True)


if __name__ == '__main__':
    main()
