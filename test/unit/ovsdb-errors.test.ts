import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  CanceledError,
  CommitError,
  ConstraintViolationError,
  DisconnectedError,
  DomainError,
  DuplicateUuidError,
  DuplicateUuidNameError,
  ERROR_CLASSES,
  NotOwnerError,
  NotSupportedError,
  OvsdbError,
  OvsdbGenericError,
  OvsdbInternalError,
  OvsdbIoError,
  OvsdbRangeError,
  OvsdbRpcError,
  OvsdbSyntaxError,
  PermissionError,
  ProtocolError,
  ReferentialIntegrityViolationError,
  ResourcesExhaustedError,
  TimedOutError,
  TimeoutError,
  UnknownColumnError,
  errorFromRpc,
  errorFromString,
  transactError,
} from '../../src/ovsdb/errors';
import { VswitchdError } from '../../src/vswitch/ack';

describe('RFC 7047 error strings map to typed classes', () => {
  it.each([
    ['referential integrity violation', ReferentialIntegrityViolationError, 'EOVSDBREFINTEGRITY'],
    ['constraint violation', ConstraintViolationError, 'EOVSDBCONSTRAINT'],
    ['resources exhausted', ResourcesExhaustedError, 'EOVSDBRESOURCES'],
    ['I/O error', OvsdbIoError, 'EOVSDBIO'],
    ['duplicate uuid-name', DuplicateUuidNameError, 'EOVSDBDUPUUIDNAME'],
    ['duplicate uuid', DuplicateUuidError, 'EOVSDBDUPUUID'],
    ['domain error', DomainError, 'EOVSDBDOMAIN'],
    ['range error', OvsdbRangeError, 'EOVSDBRANGE'],
    ['timed out', TimedOutError, 'EOVSDBTIMEDOUT'],
    ['not supported', NotSupportedError, 'EOVSDBNOTSUPPORTED'],
    ['aborted', AbortedError, 'EOVSDBABORTED'],
    ['not owner', NotOwnerError, 'EOVSDBNOTOWNER'],
    ['syntax error', OvsdbSyntaxError, 'EOVSDBSYNTAX'],
    ['unknown column', UnknownColumnError, 'EOVSDBUNKNOWNCOLUMN'],
    ['internal error', OvsdbInternalError, 'EOVSDBINTERNAL'],
    ['ovsdb error', OvsdbGenericError, 'EOVSDBERROR'],
    ['permission error', PermissionError, 'EOVSDBPERMISSION'],
    ['canceled', CanceledError, 'EOVSDBCANCELED'],
  ])('"%s"', (text, cls, code) => {
    const op = { op: 'insert', table: 'Interface', row: {} };
    const e = errorFromString(text, { details: 'why', opIndex: 2, op });
    expect(e).toBeInstanceOf(cls);
    expect(e).toBeInstanceOf(OvsdbError);
    expect(e).toBeInstanceOf(Error);
    expect(e.code).toBe(code);
    expect(e.error).toBe(text);
    expect(e.details).toBe('why');
    expect(e.opIndex).toBe(2);
    expect(e.op).toBe(op);
    expect(e.name).toBe(cls.name);
    expect(e.message).toBe(`ovsdb: ${text} in operation 2 (insert Interface): why`);
  });

  it('every mapped string is covered above; the RFC spelling "duplicate uuid name" is an alias', () => {
    expect(ERROR_CLASSES.size).toBe(19);
    const e = errorFromString('duplicate uuid name');
    expect(e).toBeInstanceOf(DuplicateUuidNameError);
    expect(e.error).toBe('duplicate uuid-name');
  });

  it('unknown strings become OvsdbRpcError carrying the text', () => {
    const e = errorFromString('unknown database', { method: 'get_schema', details: 'nope' });
    expect(e).toBeInstanceOf(OvsdbRpcError);
    expect(e.code).toBe('EOVSDBRPC');
    expect(e.error).toBe('unknown database');
    expect(e.message).toBe('ovsdb: unknown database in get_schema: nope');
  });

  it('JSON-RPC error members: object, bare string, garbage', () => {
    expect(errorFromRpc({ error: 'unknown database', details: 'x' }, 'get_schema').error).toBe('unknown database');
    expect(errorFromRpc('canceled', 'transact').error).toBe('canceled');
    expect(errorFromRpc(42, 'transact')).toBeInstanceOf(ProtocolError);
  });
});

describe('transactError reads the result array as ovsdb/execution.c builds it', () => {
  const ops = [
    { op: 'insert', table: 'Interface', row: { name: 'a' } },
    { op: 'insert', table: 'Port', row: { name: 'a' } },
    { op: 'mutate', table: 'Bridge', where: [], mutations: [] },
  ];

  it('all ops succeeded and no extra element: undefined', () => {
    expect(transactError([{ uuid: ['uuid', 'x'] }, { uuid: ['uuid', 'y'] }, { count: 1 }], ops)).toBeUndefined();
  });

  it('first failed op has {error,details}, later ones are null', () => {
    const e = transactError([{ uuid: ['uuid', 'x'] }, { error: 'constraint violation', details: 'dup' }, null], ops);
    expect(e).toBeInstanceOf(ConstraintViolationError);
    expect(e!.opIndex).toBe(1);
    expect(e!.op).toBe(ops[1]);
  });

  it('an extra element after all-successful ops is a CommitError', () => {
    const e = transactError(
      [
        { uuid: ['uuid', 'x'] },
        { uuid: ['uuid', 'y'] },
        { count: 1 },
        { error: 'referential integrity violation', details: 'dangling' },
      ],
      ops,
    );
    expect(e).toBeInstanceOf(CommitError);
    expect(e!.code).toBe('EOVSDBCOMMIT');
    expect(e!.error).toBe('referential integrity violation');
    expect((e as CommitError).cause).toBeInstanceOf(ReferentialIntegrityViolationError);
    expect(e!.opIndex).toBeUndefined();
  });

  it('a short array with no error and a non-array are protocol errors', () => {
    expect(transactError([{}], ops)).toBeInstanceOf(ProtocolError);
    expect(transactError({}, ops)).toBeInstanceOf(ProtocolError);
  });
});

describe('client-side errors', () => {
  it('have codes and are OvsdbErrors', () => {
    expect(new DisconnectedError().code).toBe('EOVSDBDISCONNECTED');
    expect(new ProtocolError('x').code).toBe('EOVSDBPROTOCOL');
    expect(new TimeoutError('x').code).toBe('EOVSDBTIMEOUT');
    for (const e of [new DisconnectedError(), new ProtocolError('x'), new TimeoutError('x')])
      expect(e).toBeInstanceOf(OvsdbError);
  });

  it('VswitchdError names each failed Interface with its error text', () => {
    const e = new VswitchdError(
      [
        {
          name: 'bad0',
          uuid: 'u0',
          ofport: -1,
          error: 'could not open network device bad0 (Address family not supported by protocol)',
        },
        { name: 'bad1', uuid: 'u1', ofport: undefined, error: undefined },
      ],
      7,
    );
    expect(e.code).toBe('EOVSDBVSWITCHD');
    expect(e.nextCfg).toBe(7);
    expect(e.interfaces.map((i) => i.name)).toEqual(['bad0', 'bad1']);
    expect(e.message).toContain('bad0: could not open network device bad0');
    expect(e.message).toContain('bad1: no ofport assigned');
  });
});
