"""A Hydra launcher that runs each multirun job as a Ray task (``hydra/launcher=ray``).

Built on Ray directly because ``hydra-ray-launcher`` 1.2.2 pins ``cloudpickle<3`` (this
environment has 3.x, which mlflow and joblib's loky use) and pulls boto3 for its AWS mode.
Hydra finds it by scanning the ``hydra_plugins`` namespace package (this folder has no
``hydra_plugins/__init__.py`` on purpose).
"""
