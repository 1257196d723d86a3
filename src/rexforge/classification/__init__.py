"""Time-series classifiers on frozen TiRex embeddings, under the official names:
``from rexforge.classification import TirexRFClassifier`` where the official package has
``from tirex.models.classification import TirexRFClassifier``.

The linear head needs torch only; the random forest scikit-learn and the gradient boosting
LightGBM (``pip install 'rexforge[classification]'``).
"""

from rexforge.heads.linear import TirexLinearClassifier
from rexforge.heads.trees import TirexGBMClassifier, TirexRFClassifier

__all__ = ["TirexLinearClassifier", "TirexRFClassifier", "TirexGBMClassifier"]
