"""How trials run: the middle layer between a study and the executor running its objective.

* :mod:`.call` — one evaluation packaged to run anywhere (``TrialCall``);
* :mod:`.runner` — a trial's attempts, retries and timeout clock, to its record;
* :mod:`.channel` and :mod:`.inbox` — how a running trial reports back
  (``ReportChannel``) and where every report ends (``ReportInbox``);
* :mod:`.executors` — what an executor can do for a trial (the seam
  integrations such as Dask plug into) and the executors aiotune owns;
* :mod:`.pool` — aiotune's own process pool, ``WorkerPool``.

See docs/architecture.md.
"""
