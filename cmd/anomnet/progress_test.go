package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/org/anomnet/dataset"
)

// clock is a fake time source that tests advance by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Unix(1e9, 0)}
	p := &progress{w: &b, now: c.now}
	p.begin("features", "img", 100)
	for i := 1; i <= 100; i++ {
		c.t = c.t.Add(time.Second)
		p.update(i, "")
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	// One line per 10 s of the 100 s, the last one the summary.
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10:\n%s", len(lines), b.String())
	}
	if want := "features   50% 50/100 img, 1.00/s, ETA 50s"; lines[4] != want {
		t.Errorf("line 5 = %q, want %q", lines[4], want)
	}
	if want := "features  100% 100/100 img, 1.00/s in 1m40s"; lines[9] != want {
		t.Errorf("last line = %q, want %q", lines[9], want)
	}
	if strings.ContainsAny(b.String(), "\r\033") {
		t.Errorf("terminal codes in a log: %q", b.String())
	}
	p.update(100, "") // a finished task prints no more
	if len(strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")) != 10 {
		t.Error("a line after the end")
	}
}

func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	c := &clock{t: time.Unix(1e9, 0)}
	p := &progress{w: &b, tty: true, now: c.now}
	p.begin("stage 1", "steps", 4)
	for i := 1; i <= 4; i++ {
		c.t = c.t.Add(2 * time.Second)
		if i == 2 {
			p.println("stage 1 epoch 1/2: mean loss 3")
		}
		p.update(i, "loss 3")
	}
	want := "\r\033[Kstage 1   [======                  ]  25% 1/4 steps, 0.50/s, ETA 6.0s, loss 3" +
		"\r\033[Kstage 1 epoch 1/2: mean loss 3\n" +
		"\r\033[Kstage 1   [============            ]  50% 2/4 steps, 0.50/s, ETA 4.0s, loss 3" +
		"\r\033[Kstage 1   [==================      ]  75% 3/4 steps, 0.50/s, ETA 2.0s, loss 3" +
		"\r\033[Kstage 1   [========================] 100% 4/4 steps, 0.50/s in 8.0s, loss 3\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond: "0.4s", 12 * time.Second: "12s", 185 * time.Second: "3m05s", 3720 * time.Second: "1h02m",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestSampleItems(t *testing.T) {
	var items []dataset.Item
	add := func(defect string, n int) {
		for range n {
			items = append(items, dataset.Item{Sample: dataset.Sample{Defect: defect}})
		}
	}
	add("crack", 10)
	add("good", 20)
	add("hole", 1)
	add("stain", 5)
	got := sampleItems(items, 8)
	var kinds []string
	for _, i := range got {
		kinds = append(kinds, items[i].Defect)
	}
	// Normal first; the 8 go round the groups: good, crack, hole, stain,
	// good, crack, stain (hole has no second), good.
	want := "good good good crack crack hole stain stain"
	if strings.Join(kinds, " ") != want {
		t.Errorf("sampled %v, want %s", kinds, want)
	}
	if again := sampleItems(items, 8); !slices.Equal(again, got) {
		t.Errorf("not deterministic: %v then %v", got, again)
	}
	if n := len(sampleItems(items[:3], 8)); n != 3 {
		t.Errorf("%d picks of 3 items", n)
	}
}
