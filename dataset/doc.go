// Package dataset reads image sets in the MVTec AD layout (and VisA's split
// file), preprocesses images for a backbone and makes a small synthetic set
// for demos and tests. (Filled by the metrics and dataset issue.)
package dataset
