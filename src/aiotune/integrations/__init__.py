"""Integrations with other systems: the edge layer of aiotune.

Each integration lives in its own module and imports its third-party package
lazily, inside its functions and classes, so importing aiotune never needs an
optional extra; a missing one raises :class:`aiotune.MissingExtraError` naming
the extra to install.

* :mod:`aiotune.integrations.dask` — run trials on a Dask cluster
  (``pip install 'aiotune[dask]'``).
* :mod:`aiotune.integrations.sklearn` — :class:`~aiotune.integrations.sklearn.TuneSearchCV`,
  a scikit-learn search estimator like ``GridSearchCV`` (``aiotune[sklearn]``).
* :mod:`aiotune.integrations.lightgbm` and :mod:`aiotune.integrations.xgboost` —
  :func:`~aiotune.integrations.lightgbm.report_callback` and
  :class:`~aiotune.integrations.xgboost.ReportCallback` report each boosting
  round to ``trial.report``, so pruners stop bad boosters early
  (``aiotune[lightgbm]``, ``aiotune[xgboost]``).
* :mod:`aiotune.integrations.mlflow` — :class:`~aiotune.integrations.mlflow.MLflowTracker`,
  an observer that logs a study and its trials to MLflow (``aiotune[mlflow]``).
"""
