//go:build !amd64 || noasm

package gemm

// Without assembly only the Go kernel exists.
var available = []Kernel{goKernel}
