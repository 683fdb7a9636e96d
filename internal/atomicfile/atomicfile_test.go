package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.txt")
	require.NoError(t, Write(p, 0o644, func(w io.Writer) error {
		_, err := io.WriteString(w, "first")
		return err
	}))
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "first", string(got))
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	// A failing writer leaves the old contents and no temporary file,
	// even after it wrote part of the new ones.
	boom := errors.New("boom")
	err = Write(p, 0o644, func(w io.Writer) error {
		io.WriteString(w, "sec")
		return boom
	})
	require.ErrorIs(t, err, boom)
	got, err = os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "first", string(got))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 1, "a temporary file was left behind")

	// Replacing works and takes the new mode.
	require.NoError(t, Write(p, 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, "second")
		return err
	}))
	got, err = os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "second", string(got))
	fi, err = os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// A folder that does not exist is an error, returned as is.
	err = Write(filepath.Join(dir, "none", "x"), 0o644, func(io.Writer) error { return nil })
	require.ErrorIs(t, err, os.ErrNotExist)
	// So is a path that is a folder: the rename fails and nothing is left.
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	require.Error(t, Write(sub, 0o644, func(io.Writer) error { return nil }))
	ents, err = os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, ents, 2)
}
