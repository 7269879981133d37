package main

import (
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	// 1..10000 µs, uniformly.
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.9, 9000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0.999, 9990 * time.Microsecond}} {
		got := h.quantile(tt.q)
		if d := float64(got-tt.want) / float64(tt.want); d < -0.02 || d > 0.02 {
			t.Errorf("q%.3f = %v, want %v within 2%%", tt.q, got, tt.want)
		}
	}
	var empty histogram
	if empty.quantile(0.99) != 0 {
		t.Error("empty histogram has a quantile")
	}
}

func TestHistogramBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 1000, 123456789, 1 << 40, 1<<63 + 5} {
		got := histValue(histBucket(v))
		lo, hi := float64(v)*0.98, float64(v)*1.02+1
		if float64(got) < lo || float64(got) > hi {
			t.Errorf("value %d lands in a bucket whose midpoint is %d", v, got)
		}
	}
}
