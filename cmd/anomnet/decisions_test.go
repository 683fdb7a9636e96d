package main

import (
	"math"
	"testing"

	"github.com/org/anomnet"
	"github.com/org/anomnet/dataset"
)

func TestClopperPearson(t *testing.T) {
	for _, c := range []struct {
		k, n   int
		lo, hi float64
	}{
		{0, 60, 0, 1 - math.Pow(0.025, 1.0/60)},
		{60, 60, math.Pow(0.025, 1.0/60), 1},
		{5, 100, 0.016431, 0.112838}, // reference values of the exact interval
	} {
		lo, hi := clopperPearson(c.k, c.n)
		if math.Abs(lo-c.lo) > 1e-5 || math.Abs(hi-c.hi) > 1e-5 {
			t.Errorf("%d of %d: [%.6f, %.6f], want [%.6f, %.6f]", c.k, c.n, lo, hi, c.lo, c.hi)
		}
	}
}

// TestEvaluateDecisions checks the counts, precision and F1 at the
// threshold, and F1-max, on a hand-made test set.
func TestEvaluateDecisions(t *testing.T) {
	// Normal scores 1..4, defective 3..6 (two of each kind); the model
	// flags scores above 3.5.
	var items []dataset.Item
	var rs []anomnet.Result
	for i, s := range []float64{1, 2, 3, 4, 3, 5, 6, 2.5} {
		defect := dataset.Good
		if i >= 4 {
			defect = []string{"a", "b"}[i%2]
		}
		items = append(items, dataset.Item{Sample: dataset.Sample{Defect: defect, Anomalous: defect != dataset.Good}})
		rs = append(rs, anomnet.Result{Score: s, Anomalous: s > 3.5})
	}
	row, err := evaluate(items, rs, "all", false)
	if err != nil {
		t.Fatal(err)
	}
	// Defective: 3 (missed), 5, 6, 2.5 (missed): 2 caught of 4; normal 4 flagged.
	if row.Caught != 2 || row.Defective != 4 || row.Flagged != 1 || row.Normal != 4 {
		t.Fatalf("row %+v", row)
	}
	if *row.Precision != 2.0/3 || math.Abs(*row.F1-4.0/7) > 1e-12 {
		t.Errorf("precision %v, F1 %v", *row.Precision, *row.F1)
	}
	if *row.F1Max < *row.F1 {
		t.Errorf("F1-max %v below F1 %v", *row.F1Max, *row.F1)
	}
}
