package metrics

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// ErrOneClass is returned when the labels hold only one class, for which a
// ROC curve does not exist.
var ErrOneClass = errors.New("anomnet/metrics: only one class present (need both normal and anomalous samples)")

// Curve is a ROC curve: for each distinct threshold, from the highest
// score down, the false- and true-positive rates of calling "anomalous"
// every sample scoring at or above it. The first point is (0, 0) with an
// infinite threshold.
type Curve struct {
	FPR, TPR, Thresholds []float64
}

// ROC returns the ROC curve of scores (higher means more anomalous) against
// labels (true for anomalous). Equal scores form one point, as in
// scikit-learn's roc_curve without dropping intermediate points.
func ROC(scores []float64, labels []bool) (Curve, error) {
	pos, neg, order, err := rank(scores, labels)
	if err != nil {
		return Curve{}, err
	}
	c := Curve{FPR: []float64{0}, TPR: []float64{0}, Thresholds: []float64{math.Inf(1)}}
	sweep(scores, labels, order, func(s, tp, fp float64) {
		c.FPR = append(c.FPR, fp/neg)
		c.TPR = append(c.TPR, tp/pos)
		c.Thresholds = append(c.Thresholds, s)
	})
	return c, nil
}

// sweep walks the distinct scores from the highest down and calls at with
// each and the true and false positives of the threshold there: equal
// scores are one step, which is the tie rule of every curve here.
func sweep(scores []float64, labels []bool, order []int, at func(s, tp, fp float64)) {
	var tp, fp float64
	for i := 0; i < len(order); {
		s := scores[order[i]]
		for ; i < len(order) && scores[order[i]] == s; i++ {
			if labels[order[i]] {
				tp++
			} else {
				fp++
			}
		}
		at(s, tp, fp)
	}
}

// AUROC is the area under the ROC curve (trapezoids between points), which
// counts a tie between an anomalous and a normal sample as half a correct
// ordering, as scikit-learn's roc_auc_score does.
func AUROC(scores []float64, labels []bool) (float64, error) {
	c, err := ROC(scores, labels)
	if err != nil {
		return 0, err
	}
	return trapezoid(c.FPR, c.TPR, 1), nil
}

// F1Max returns the best F1 score over all thresholds (calling anomalous
// every sample scoring at or above the threshold) and the threshold that
// gives it (the lowest of equal bests, for the highest recall).
func F1Max(scores []float64, labels []bool) (f1, threshold float64, err error) {
	pos, _, order, err := rank(scores, labels)
	if err != nil {
		return 0, 0, err
	}
	sweep(scores, labels, order, func(s, tp, fp float64) {
		// F1 = 2 tp / (2 tp + fp + fn), with fn = pos - tp.
		if v := 2 * tp / (tp + fp + pos); v >= f1 {
			f1, threshold = v, s
		}
	})
	return f1, threshold, nil
}

// rank validates the inputs and returns the class sizes and the sample
// indices by descending score.
func rank(scores []float64, labels []bool) (pos, neg float64, order []int, err error) {
	if len(scores) != len(labels) {
		return 0, 0, nil, fmt.Errorf("anomnet/metrics: %d scores for %d labels", len(scores), len(labels))
	}
	for i, s := range scores {
		if math.IsNaN(s) {
			return 0, 0, nil, fmt.Errorf("anomnet/metrics: score %d is NaN", i)
		}
		if labels[i] {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return 0, 0, nil, ErrOneClass
	}
	order = make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	return pos, neg, order, nil
}

// trapezoid integrates y over x (x non-decreasing) from x[0] up to xMax,
// interpolating y linearly at xMax when it falls between two points.
func trapezoid(x, y []float64, xMax float64) float64 {
	var area float64
	for i := 1; i < len(x); i++ {
		if x[i-1] >= xMax {
			break
		}
		x1, y1 := x[i], y[i]
		if x1 > xMax {
			// Cut the last segment at xMax.
			t := (xMax - x[i-1]) / (x1 - x[i-1])
			x1, y1 = xMax, y[i-1]+t*(y1-y[i-1])
		}
		area += (x1 - x[i-1]) * (y1 + y[i-1]) / 2
	}
	return area
}
