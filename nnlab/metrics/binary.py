"""The metrics of a two-class detector (seizure vs not, preictal vs interictal), one collection
for every task that has one: the step's predictions are P(class 1)."""

from __future__ import annotations

import torchmetrics


def binary_metrics() -> torchmetrics.MetricCollection:
    """Accuracy, sensitivity (recall of class 1), specificity (recall of class 0) and ROC AUC of
    probabilities P(class 1) against labels in {0, 1}; accuracy, sensitivity and specificity at
    the threshold 0.5."""
    c = torchmetrics.classification
    return torchmetrics.MetricCollection(
        {
            "acc": c.BinaryAccuracy(),
            "sensitivity": c.BinaryRecall(),
            "specificity": c.BinarySpecificity(),
            "auc": c.BinaryAUROC(),
        }
    )
