// Package metrics measures anomaly detection and localization: image and
// pixel AUROC, PRO/AUPRO as in MVTec AD, F1-max and thresholds. (Filled by
// the metrics issue.)
package metrics
