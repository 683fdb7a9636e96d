package metrics

import (
	"fmt"
	"math"
	"slices"
)

// Quantile returns the q-quantile (0 <= q <= 1) of values, interpolating
// linearly between order statistics (NumPy's default method). Thresholds
// calibrated on normal data use it: a high quantile of normal scores flags
// few normal parts.
func Quantile(values []float64, q float64) (float64, error) {
	if len(values) == 0 {
		return 0, fmt.Errorf("anomnet/metrics: quantile of no values")
	}
	if !(q >= 0 && q <= 1) {
		return 0, fmt.Errorf("anomnet/metrics: quantile %g, want [0, 1]", q)
	}
	s := slices.Clone(values)
	for i, v := range s {
		if math.IsNaN(v) {
			return 0, fmt.Errorf("anomnet/metrics: value %d is NaN", i)
		}
	}
	slices.Sort(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo == len(s)-1 {
		return s[lo], nil
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo]), nil
}
