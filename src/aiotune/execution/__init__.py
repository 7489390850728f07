"""Running one trial anywhere: the worker pool, executors, the trial context and reports.

The top layer (:mod:`aiotune.tuner`) hands a trial's number and params to
:func:`aiotune.execution.runner.run_trial` and gets its finished record back.
"""
