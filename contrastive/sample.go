package contrastive

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Sample returns m distinct indices drawn uniformly from [0, n), in a random
// order; when m >= n it returns all n indices in a random order. The result
// depends only on rng's state.
func Sample(rng *rand.Rand, n, m int) []int32 {
	if n < 0 || m < 0 || n > math.MaxInt32 {
		panic(fmt.Sprintf("anomnet/contrastive: Sample(%d of %d)", m, n))
	}
	m = min(m, n)
	// A partial Fisher-Yates shuffle: the first m entries are a uniform
	// ordered sample without replacement.
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	for i := range m {
		j := i + rng.IntN(n-i)
		p[i], p[j] = p[j], p[i]
	}
	return p[:m:m]
}
