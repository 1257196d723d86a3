"""Time-series regressors on frozen TiRex embeddings, under the official names:
``from rexforge.regression import TirexRFRegressor`` where the official package has
``from tirex.models.regression import TirexRFRegressor``.

The linear head needs torch only; the random forest scikit-learn and the gradient boosting
LightGBM (``pip install 'rexforge[regression]'``).
"""

from rexforge.heads.linear import TirexLinearRegressor
from rexforge.heads.trees import TirexGBMRegressor, TirexRFRegressor

__all__ = ["TirexLinearRegressor", "TirexRFRegressor", "TirexGBMRegressor"]
