package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ember-edge/ember/internal/bytesize"
	"golang.org/x/term"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// jsonOut is how protos print with -o json: the .proto field names, and
// every field even when zero, so scripts see a stable shape.
var jsonOut = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Indent: "  "}

// jsonLine is jsonOut on one line, for streams.
var jsonLine = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

func (a *app) json() bool { return a.output == "json" }

func (a *app) printProto(m proto.Message) error {
	b, err := jsonOut.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, string(b))
	return err
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// protoValue converts a proto message into a plain value that printJSON can
// embed, keeping protojson's field names and encodings.
func protoValue(m proto.Message) json.RawMessage {
	b, _ := jsonOut.Marshal(m)
	return b
}

func (a *app) table() *tabwriter.Writer {
	return tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
}

// progressBar draws a one-line bar on a terminal; elsewhere it prints
// nothing until done, so logs and pipes stay clean.
type progressBar struct {
	w     io.Writer
	tty   bool
	start time.Time
	label string
	shown bool
}

func newProgressBar(w io.Writer, label string) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progressBar{w: w, tty: tty, start: time.Now(), label: label}
}

func (p *progressBar) update(phase string, done, total int64) {
	if !p.tty {
		return
	}
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r%s %-10s [%s%s] %3.0f%% %s/%s %s/s ", p.label, phase,
		strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100,
		bytesize.Size(done), bytesize.Size(total), bytesize.Size(int64(rate)))
	p.shown = true
}

func (p *progressBar) finish() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

func termIsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
