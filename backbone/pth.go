package backbone

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// This file reads state dicts that torch.save wrote in its zip format
// (.pth, .pt): a pickle, data.pkl, whose tensors refer to storages stored
// as separate records.

// maxPickle bounds data.pkl, the pickled structure of a checkpoint (tens of
// kilobytes for a ResNet's state dict).
const maxPickle = 64 << 20

// legacyMagic starts torch.save's pre-1.6 format: the pickled magic number
// after the protocol opcode.
var legacyMagic = []byte{0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// readPTH reads a state dict saved by torch.save in its zip format: the
// pickle data.pkl, whose tensors refer to storages stored as data/<key>.
// Storages are read only for the tensors that keep accepts.
func readPTH(file string, keep func(string) bool) (map[string]*weight, error) {
	errorf := func(format string, args ...any) error {
		return fmt.Errorf("anomnet/backbone: %s: %s", file, fmt.Sprintf(format, args...))
	}
	zr, err := zip.OpenReader(file)
	if err != nil {
		if _, serr := os.Stat(file); serr != nil {
			return nil, fmt.Errorf("anomnet/backbone: %w", serr)
		}
		if head, _ := readHead(file, 16); len(head) > 2 && bytes.HasPrefix(head[2:], legacyMagic) {
			return nil, errorf("PyTorch's legacy (pre-1.6) format; re-save it with a recent PyTorch: torch.save(torch.load(old), new)")
		}
		return nil, errorf("not a PyTorch checkpoint: not a zip archive, or a truncated one (%v)", err)
	}
	defer zr.Close()
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("anomnet/backbone: %w", err)
	}
	records := make(map[string]*zip.File, len(zr.File))
	var pkl []string
	for _, f := range zr.File {
		records[f.Name] = f
		if dir, base := path.Split(f.Name); base == "data.pkl" && strings.Count(dir, "/") == 1 {
			pkl = append(pkl, f.Name)
		}
	}
	if len(pkl) != 1 {
		return nil, errorf("not a PyTorch checkpoint: %d top-level data.pkl records in the zip archive, want 1", len(pkl))
	}
	prefix := strings.TrimSuffix(pkl[0], "data.pkl")
	if _, ok := records[prefix+"constants.pkl"]; ok {
		return nil, errorf("a TorchScript archive (torch.jit.save); anomnet reads state dicts: torch.save(model.state_dict(), path)")
	}
	if bo, ok := records[prefix+"byteorder"]; ok {
		if b, err := readRecord(bo, 16, st.Size()); err != nil || string(b) != "little" {
			return nil, errorf("byteorder record %q, want \"little\"", b)
		}
	}
	data, err := readRecord(records[pkl[0]], maxPickle, st.Size())
	if err != nil {
		return nil, errorf("%s: %v", pkl[0], err)
	}
	if err := checkPickle(data); err != nil {
		return nil, errorf("corrupt %s: %v", pkl[0], err)
	}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = pthFindClass
	u.PersistentLoad = func(id any) (any, error) {
		t, ok := id.(*types.Tuple)
		if !ok || t.Len() < 5 || t.Get(0) != "storage" {
			return nil, fmt.Errorf("persistent id %v is not a storage", id)
		}
		typ, ok1 := t.Get(1).(*pthStorageType)
		key, ok2 := t.Get(2).(string)
		n, ok3 := t.Get(4).(int)
		if !ok1 || !ok2 || !ok3 || n < 0 {
			return nil, fmt.Errorf("storage %v: unexpected fields", id)
		}
		rec, ok := records[prefix+"data/"+key]
		if !ok {
			return nil, fmt.Errorf("storage %s missing from the archive", key)
		}
		s := &pthStorage{typ: typ, key: key, n: n, rec: rec, fileSize: st.Size()}
		if typ.elem > 0 && (uint64(n) > rec.UncompressedSize64/uint64(typ.elem) || uint64(n*typ.elem) != rec.UncompressedSize64) {
			return nil, fmt.Errorf("storage %s: %d elements of %s need %d bytes, the archive holds %d", key, n, typ.dtype, uint64(n)*uint64(typ.elem), rec.UncompressedSize64)
		}
		return s, nil
	}
	obj, err := loadPickle(&u)
	if err != nil {
		return nil, errorf("corrupt %s: %v", pkl[0], err)
	}
	entries, err := stateDictEntries(obj)
	if err != nil {
		return nil, errorf("%v", err)
	}
	out := make(map[string]*weight, len(entries))
	for _, e := range entries {
		name, ok := e.key.(string)
		if !ok {
			return nil, errorf("state dict key %v is a %T, not a string", e.key, e.key)
		}
		t, isTensor := e.value.(*pthTensor)
		w := &weight{}
		if isTensor {
			w.shape = t.size
		}
		out[name] = w
		if !keep(name) {
			continue
		}
		if !isTensor {
			return nil, errorf("key %s holds %s, not a tensor", name, pyTypeName(e.value))
		}
		if w.data, err = t.float32s(); err != nil {
			return nil, errorf("key %s: %v", name, err)
		}
	}
	return out, nil
}

// readHead returns up to n bytes from the start of a file.
func readHead(file string, n int) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF {
		err = nil
	}
	return b[:m], err
}

// readRecord reads a zip record of at most limit bytes. A record's sizes
// come from the archive; they are checked against the file's size (and
// deflate's largest ratio) before the buffer is allocated.
func readRecord(f *zip.File, limit int, fileSize int64) ([]byte, error) {
	n := f.UncompressedSize64
	ratio := uint64(1)
	if f.Method != zip.Store {
		ratio = 1032 // deflate's maximum
	}
	if n > uint64(limit) || f.CompressedSize64 > uint64(fileSize) || n > ratio*f.CompressedSize64 {
		return nil, fmt.Errorf("record %s: %d bytes (%d compressed) do not fit the %d-byte file", f.Name, n, f.CompressedSize64, fileSize)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("record %s: %v", f.Name, err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("record %s: %v", f.Name, err)
	}
	// archive/zip checks a record's CRC-32 only when a read reaches its
	// end: read on to EOF, or a flipped bit in the weights goes unnoticed.
	if _, err := io.ReadFull(rc, make([]byte, 1)); err != io.EOF {
		if err == nil {
			err = errors.New("longer than its header says")
		}
		return nil, fmt.Errorf("record %s: %v", f.Name, err)
	}
	return b, nil
}

// loadPickle runs the unpickler, turning a panic on malformed input into
// an error.
func loadPickle(u *pickle.Unpickler) (obj any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unpickling failed: %v", r)
		}
	}()
	return u.Load()
}

// checkPickle walks a pickle's opcodes and checks that each is one and
// that every length it declares fits in the bytes that follow: gopickle
// allocates what a length says before reading, so a forged length would
// otherwise allocate without bound (and an unknown opcode makes it panic).
func checkPickle(p []byte) error {
	skipLine := func(i int) int {
		if j := bytes.IndexByte(p[i:], '\n'); j >= 0 {
			return i + j + 1
		}
		return len(p)
	}
	for i := 0; i < len(p); {
		op := p[i]
		i++
		width := 0 // bytes of a length argument
		switch op {
		case '.': // STOP
			return nil
		case 'K', 'q', 'h', 0x80, 0x82: // one-byte arguments
			i++
		case 'M', 0x83:
			i += 2
		case 'J', 'r', 'j', 0x84:
			i += 4
		case 'G':
			i += 8
		case 'I', 'L', 'S', 'V', 'F', 'p', 'g', 'P': // newline-terminated
			i = skipLine(i)
		case 'c', 'i': // module and name lines
			i = skipLine(skipLine(i))
		case 'U', 'C', 0x8c, 0x8a:
			width = 1
		case 'T', 'B', 'X', 0x8b:
			width = 4
		case 0x8d, 0x8e, 0x96, 0x95:
			width = 8
		case '(', ')', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'd', '}', 'e', 'l', ']', 'o', 's', 't', 'u',
			0x81, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x97, 0x98: // no argument
		default:
			return fmt.Errorf("unknown opcode 0x%02x at %d", op, i-1)
		}
		if width == 0 {
			continue
		}
		if len(p)-i < width {
			return fmt.Errorf("opcode 0x%02x at %d: truncated", op, i-1)
		}
		var n uint64
		for k := width - 1; k >= 0; k-- {
			n = n<<8 | uint64(p[i+k])
		}
		i += width
		if n > uint64(len(p)-i) {
			return fmt.Errorf("opcode 0x%02x at %d declares %d bytes, %d remain", op, i-width-1, n, len(p)-i)
		}
		if op != 0x95 { // a FRAME's contents are opcodes themselves
			i += int(n)
		}
	}
	return nil
}

// pthStorageType is a torch.*Storage class of a checkpoint; dtype names
// the element type, elem its size (0 where unknown).
type pthStorageType struct {
	dtype string
	elem  int
}

var pthStorageTypes = map[string]pthStorageType{
	"FloatStorage": {"float32", 4}, "HalfStorage": {"float16", 2},
	"BFloat16Storage": {"bfloat16", 2}, "DoubleStorage": {"float64", 8},
	"LongStorage": {"int64", 8}, "IntStorage": {"int32", 4}, "ShortStorage": {"int16", 2},
	"CharStorage": {"int8", 1}, "ByteStorage": {"uint8", 1}, "BoolStorage": {"bool", 1},
	"ComplexFloatStorage": {"complex64", 8}, "ComplexDoubleStorage": {"complex128", 16},
}

// pthStorage is a storage of the archive, read when a tensor needs it.
type pthStorage struct {
	typ      *pthStorageType
	key      string
	n        int // elements
	rec      *zip.File
	fileSize int64
}

// pthTensor is what torch._utils._rebuild_tensor_v2 describes: a strided
// view of a storage.
type pthTensor struct {
	st           *pthStorage
	offset       int
	size, stride []int
}

// float32s returns the tensor's elements in row-major order, following
// its strides (a state dict may hold views: transposes, slices).
func (t *pthTensor) float32s() ([]float32, error) {
	typ := t.st.typ
	if !floatDTypes[typ.dtype] {
		return nil, fmt.Errorf("%s elements; anomnet reads float32, float16, bfloat16 and float64", typ.dtype)
	}
	n := numel(t.size, t.st.n)
	if n < 0 || len(t.stride) != len(t.size) || t.offset < 0 {
		return nil, fmt.Errorf("shape %v, strides %v and offset %d do not fit its storage of %d elements", t.size, t.stride, t.offset, t.st.n)
	}
	out := make([]float32, n)
	if n == 0 {
		return out, nil
	}
	if t.offset >= t.st.n {
		return nil, fmt.Errorf("offset %d past its storage of %d elements", t.offset, t.st.n)
	}
	last, contiguous, want := t.offset, true, 1
	for k := len(t.size) - 1; k >= 0; k-- {
		if t.stride[k] < 0 || t.stride[k] > t.st.n {
			return nil, fmt.Errorf("stride %v outside its storage of %d elements", t.stride, t.st.n)
		}
		if last += (t.size[k] - 1) * t.stride[k]; last >= t.st.n {
			return nil, fmt.Errorf("shape %v, strides %v and offset %d reach past its storage of %d elements", t.size, t.stride, t.offset, t.st.n)
		}
		if t.size[k] != 1 && t.stride[k] != want {
			contiguous = false
		}
		want *= t.size[k]
	}
	raw, err := readRecord(t.st.rec, t.st.n*typ.elem, t.st.fileSize)
	if err != nil {
		return nil, fmt.Errorf("storage %s: %v", t.st.key, err)
	}
	if len(raw) != t.st.n*typ.elem {
		return nil, fmt.Errorf("storage %s: %d bytes, want %d", t.st.key, len(raw), t.st.n*typ.elem)
	}
	if contiguous {
		decodeFloats(out, raw[t.offset*typ.elem:], typ.dtype)
		return out, nil
	}
	all := make([]float32, t.st.n)
	decodeFloats(all, raw, typ.dtype)
	idx := make([]int, len(t.size))
	for i := range out {
		at := t.offset
		for k, j := range idx {
			at += j * t.stride[k]
		}
		out[i] = all[at]
		for k := len(idx) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < t.size[k] {
				break
			}
			idx[k] = 0
		}
	}
	return out, nil
}

// pthFindClass resolves the globals of a checkpoint's pickle: tensors and
// storages become pthTensor and pthStorageType; any other class becomes a
// pickledClass, so that a checkpoint dict holding other objects (an
// optimizer's state, argparse options) still loads, and a pickled model is
// recognised by its class.
func pthFindClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return rebuildParameter{}, nil
	}
	if t, ok := pthStorageTypes[name]; ok && module == "torch" {
		return &t, nil
	}
	if module == "torch" && strings.HasSuffix(name, "Storage") {
		return &pthStorageType{dtype: name}, nil
	}
	return &pickledClass{module + "." + name}, nil
}

type rebuildTensor struct{}

// Call builds a pthTensor from (storage, offset, size, stride,
// requires_grad, backward_hooks[, metadata]).
func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(args))
	}
	st, ok := args[0].(*pthStorage)
	offset, ok2 := args[1].(int)
	size, ok3 := intTuple(args[2])
	stride, ok4 := intTuple(args[3])
	if !ok || !ok2 || !ok3 || !ok4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with unexpected arguments %v", args[:4])
	}
	return &pthTensor{st: st, offset: offset, size: size, stride: stride}, nil
}

type rebuildParameter struct{}

// Call returns the tensor of an nn.Parameter.
func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("_rebuild_parameter without arguments")
	}
	return args[0], nil
}

func intTuple(v any) ([]int, bool) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int, t.Len())
	for i := range out {
		if out[i], ok = t.Get(i).(int); !ok {
			return nil, false
		}
	}
	return out, true
}

// pickledClass stands for a Python class the reader does not model; its
// instances are pickledObjects that remember it.
type pickledClass struct{ name string }

// Call stands for calling the class (pickle's REDUCE).
func (c *pickledClass) Call(args ...any) (any, error) { return &pickledObject{c.name}, nil }

// PyNew stands for the class's __new__ (pickle's NEWOBJ).
func (c *pickledClass) PyNew(args ...any) (any, error) { return &pickledObject{c.name}, nil }

// pickledObject is an instance of a pickledClass; its state is dropped.
type pickledObject struct{ class string }

// PySetState drops the object's state (pickle's BUILD).
func (*pickledObject) PySetState(any) error { return nil }

// PyDictSet drops an attribute (pickle's BUILD without __setstate__).
func (*pickledObject) PyDictSet(_, _ any) error { return nil }

func pyTypeName(v any) string {
	switch v := v.(type) {
	case *pickledObject:
		return "a " + v.class
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *types.List:
		return "a list"
	case *types.Tuple:
		return "a tuple"
	case int, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case nil:
		return "None"
	}
	return fmt.Sprintf("a %T", v)
}

type pickleEntry struct{ key, value any }

// stateDictEntries returns the entries of a pickled state dict, unwrapping
// the common {"state_dict": ...} and {"model": ...} checkpoint dicts.
func stateDictEntries(obj any) ([]pickleEntry, error) {
	entries, ok := dictEntries(obj)
	if !ok {
		if o, isObj := obj.(*pickledObject); isObj {
			return nil, fmt.Errorf("holds a pickled %s, not a state dict; save one with torch.save(model.state_dict(), path)", o.class)
		}
		return nil, fmt.Errorf("holds %s, not a state dict", pyTypeName(obj))
	}
	for _, wrapper := range []string{"state_dict", "model"} {
		for _, e := range entries {
			if e.key != wrapper {
				continue
			}
			if inner, ok := dictEntries(e.value); ok {
				return inner, nil
			}
			if o, isObj := e.value.(*pickledObject); isObj {
				return nil, fmt.Errorf("%q holds a pickled %s, not a state dict; save one with torch.save(model.state_dict(), path)", wrapper, o.class)
			}
		}
	}
	return entries, nil
}

func dictEntries(obj any) ([]pickleEntry, bool) {
	switch d := obj.(type) {
	case *types.OrderedDict:
		out := make([]pickleEntry, 0, d.Len())
		for e := d.List.Front(); e != nil; e = e.Next() {
			entry := e.Value.(*types.OrderedDictEntry)
			out = append(out, pickleEntry{entry.Key, entry.Value})
		}
		return out, true
	case *types.Dict:
		out := make([]pickleEntry, 0, d.Len())
		for _, e := range *d {
			out = append(out, pickleEntry{e.Key, e.Value})
		}
		return out, true
	}
	return nil, false
}
