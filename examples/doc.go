// Package examples holds runnable programs, one main package per
// subdirectory (go run ./examples/NAME). It has no code of its own.
package examples
