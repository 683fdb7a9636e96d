// Package metrics measures anomaly detection and localization: image
// AUROC, ROC curves, F1-max with its threshold and quantile thresholds
// (roc.go, threshold.go), and, streamed one anomaly map at a time with
// bounded memory, pixel AUROC and AUPRO/PRO over 8-connected ground-truth
// regions as in MVTec AD (Pixels). Ties count as in scikit-learn.
package metrics
