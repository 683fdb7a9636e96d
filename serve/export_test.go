package serve

// Hold makes the worker wait before each batch until release is called:
// the queue then fills deterministically.
func (s *Server) Hold() (release func()) {
	h := make(chan struct{})
	s.hold.Store(&h)
	return func() {
		s.hold.Store(nil)
		close(h)
	}
}
