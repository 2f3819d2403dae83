/** What the churn benchmark drives: one way of plugging and unplugging a vhost-user VIF. */
import type { VIFVHostUser } from '../vif/model';

/** One pod's plug and unplug through some path; `slot` is the worker, `seq` its cycle. */
export interface ChurnWorker {
  plug(vif: VIFVHostUser, id: string): Promise<void>;
  unplug(vif: VIFVHostUser, id: string): Promise<void>;
}
