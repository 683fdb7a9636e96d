//go:build !amd64 || noasm

package vec

// Without assembly only the Go loops exist.
var useAVX512 = false

func sqDist16(a, b *float32, n int) float32 { panic("anomnet/vec: no assembly") }

func dot16(a, b *float32, n int) float32 { panic("anomnet/vec: no assembly") }

func min16(x *float32, n int, acc *[16]float32) { panic("anomnet/vec: no assembly") }

func filterLE16(x *float32, n int, limit float32, out *int32, lanes *[32]int32) int {
	panic("anomnet/vec: no assembly")
}

func minDist16(a float32, c, d *float32, n int) float32 { panic("anomnet/vec: no assembly") }
