package cuda

// Error is a failure of the CUDA device: a CUDA runtime call or a kernel
// launch that returned an error, or a bad index a kernel found. Op names the
// Device method (or the Sync that found the failure) and Msg says what
// failed, with CUDA's own message (cudaGetErrorString) where there is one.
type Error struct {
	Op   string
	Code int // the cudaError_t, or 10001 and up for anomnet's own checks
	Msg  string
}

func (e *Error) Error() string { return "anomnet/cuda: " + e.Op + ": " + e.Msg }
