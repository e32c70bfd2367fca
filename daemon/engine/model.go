package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hybridgroup/yzma/pkg/llama"

	"github.com/ember-edge/ember/daemon/gguf"
	"github.com/ember-edge/ember/daemon/inference"
)

// Settings are the values a model runs with, after defaults and overrides.
type Settings struct {
	// Context is the context length of one sequence, in tokens.
	Context int
	Threads int
	// Parallel is how many sequences share the context.
	Parallel  int
	BatchSize int
	GPULayers int
}

// Model is a loaded model. Its methods are safe for concurrent use; the
// scheduler serialises the work that touches llama.cpp contexts.
type Model struct {
	name     atomic.Pointer[string] // Rename changes it while requests run
	path     string
	file     *gguf.File
	meta     gguf.Metadata
	settings Settings
	opts     *Options
	loadedAt time.Time

	lm        llama.Model
	vocab     llama.Vocab
	nVocab    int32
	nEmbd     int32
	generates bool // false for encoder-only (embedding) models
	template  string
	specials  []string // text of control tokens, to spot them in data

	eogOnce sync.Once
	eog     []llama.Token
	threads atomic.Int32 // current, which the governor may lower

	sched *scheduler
}

func loadModel(spec ModelSpec, opts *Options) (*Model, error) {
	if spec.Name == "" {
		return nil, fmt.Errorf("%w: model name is empty", ErrInvalidRequest)
	}
	fd, err := os.Open(spec.Path)
	if err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	defer fd.Close() // llama.cpp maps the file by itself
	// llama.cpp may abort the process on a malformed file: validate first.
	f, err := gguf.OpenFile(fd)
	if err != nil {
		return nil, err
	}
	if afterValidate != nil {
		afterValidate(spec.Path)
	}
	meta := f.Metadata()
	st := resolveSettings(spec, meta, opts)
	if err := admit(f, meta, st, opts); err != nil {
		return nil, err
	}

	mp := llama.ModelDefaultParams()
	mp.NGpuLayers = int32(st.GPULayers)
	// llama.cpp opens the file that was validated, through the open
	// descriptor, not the path: a file swapped in at the path meanwhile
	// is never loaded.
	lm, err := llama.ModelLoadFromFile(fdPath(fd), mp)
	if err != nil || lm == 0 {
		return nil, llamaError(fmt.Sprintf("llama.cpp could not load %s (run with llama.verbose: true for its log)", spec.Path), err)
	}
	m := &Model{
		path: spec.Path, file: f, meta: meta, settings: st, opts: opts,
		loadedAt: time.Now(), lm: lm,
		vocab:     llama.ModelGetVocab(lm),
		nEmbd:     llama.ModelNEmbd(lm),
		generates: llama.ModelHasDecoder(lm),
		template:  llama.ModelChatTemplate(lm, ""),
		specials:  specialTexts(f),
	}
	m.setName(spec.Name)
	m.threads.Store(int32(st.Threads))
	m.nVocab = llama.VocabNTokens(m.vocab)
	if llama.ModelHasEncoder(lm) && llama.ModelHasDecoder(lm) {
		llama.ModelFree(lm)
		return nil, fmt.Errorf("%s: encoder-decoder models (%s) are not supported", spec.Path, meta.Architecture)
	}
	m.sched, err = newScheduler(m)
	if err != nil {
		llama.ModelFree(lm)
		return nil, err
	}
	return m, nil
}

// resolveSettings applies the model's overrides, then the engine's, then
// values derived from the hardware and the model.
func resolveSettings(spec ModelSpec, meta gguf.Metadata, opts *Options) Settings {
	st := Settings{
		Threads:   spec.Threads,
		Context:   spec.Context,
		Parallel:  opts.Parallel,
		BatchSize: opts.BatchSize,
		GPULayers: opts.GPULayers,
	}
	if st.Threads == 0 {
		st.Threads = opts.Threads
	}
	if st.Context == 0 {
		st.Context = opts.Context
	}
	if st.Context == 0 {
		st.Context = opts.ContextCap
		if trained := int(meta.ContextLength); trained > 0 && trained < st.Context {
			st.Context = trained
		}
	}
	st.BatchSize = min(st.BatchSize, st.Context)
	return st
}

// specialTexts lists the text of the model's control and user-defined
// tokens, which must not be parsed out of data such as chat content.
func specialTexts(f *gguf.File) []string {
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	v, ok := f.Get("tokenizer.ggml.token_type")
	if !ok {
		return nil
	}
	types, _ := gguf.ArrayOf[int32](v)
	var out []string
	for i, t := range types {
		const control, userDefined = 3, 4
		if (t == control || t == userDefined) && i < len(tokens) && tokens[i] != "" {
			out = append(out, tokens[i])
		}
	}
	return out
}

// endOfGeneration lists the tokens that end generation, found once by
// asking llama.cpp about every token.
func (m *Model) endOfGeneration() []llama.Token {
	m.eogOnce.Do(func() {
		for t := llama.Token(0); t < llama.Token(m.nVocab); t++ {
			if llama.VocabIsEOG(m.vocab, t) {
				m.eog = append(m.eog, t)
			}
		}
	})
	return m.eog
}

func (m *Model) close() {
	m.sched.close()
	llama.ModelFree(m.lm)
}

// Name returns the name the model was loaded under.
func (m *Model) Name() string { return *m.name.Load() }

func (m *Model) setName(name string) { m.name.Store(&name) }

// Path returns the model's file.
func (m *Model) Path() string { return m.path }

// Metadata returns what the model's GGUF header says.
func (m *Model) Metadata() gguf.Metadata { return m.meta }

// Settings returns the values the model runs with.
func (m *Model) Settings() Settings { return m.settings }

// LoadedAt returns when the model was loaded.
func (m *Model) LoadedAt() time.Time { return m.loadedAt }

// EmbeddingSize is the length of the model's embedding vectors.
func (m *Model) EmbeddingSize() int { return int(m.nEmbd) }

// SetThreads changes the decoding threads (the thermal governor lowers
// them on a hot board). It applies between steps and returns at once.
func (m *Model) SetThreads(n int) {
	n = max(n, 1)
	select {
	case m.sched.ctrl <- func() {
		llama.SetNThreads(m.sched.lctx, int32(n), int32(n))
		m.threads.Store(int32(n))
	}:
	case <-m.sched.done:
	}
}

// Threads returns the decoding threads in use.
func (m *Model) Threads() int { return int(m.threads.Load()) }

// SetParallelLimit caps the sequences decoded together, at most the
// loaded parallelism; new requests wait in the queue meanwhile.
func (m *Model) SetParallelLimit(n int) {
	m.sched.limit.Store(int32(min(max(n, 1), m.settings.Parallel)))
}

// Stats returns the scheduler's counters.
func (m *Model) Stats() Stats { return m.sched.stats() }

// Generate runs req and calls emit with each piece of text as it is
// produced. emit runs on the caller's goroutine; if it returns an error,
// generation is cancelled and Generate returns that error. Cancelling ctx
// stops decoding within one token.
func (m *Model) Generate(ctx context.Context, req Request, emit func(text string) error) (Result, error) {
	if !m.generates {
		return Result{}, fmt.Errorf("%w: model %q is an embedding model and cannot generate text", ErrInvalidRequest, m.Name())
	}
	segs := req.Segments
	if segs == nil {
		segs = []Segment{{Text: req.Prompt}}
	}
	tokens, err := m.tokenizeSegments(segs)
	if err != nil {
		return Result{}, err
	}
	return m.generateTokens(ctx, tokens, req, emit)
}

func (m *Model) generateTokens(ctx context.Context, tokens []llama.Token, req Request, emit func(string) error) (Result, error) {
	if len(tokens) >= m.sched.nCtxSeq {
		return Result{}, &PromptTooLongError{Tokens: len(tokens), Context: m.sched.nCtxSeq}
	}
	maxTokens := req.MaxTokens
	if maxTokens < 0 {
		return Result{}, invalid("max_tokens %d must not be negative", maxTokens)
	}
	if maxTokens == 0 {
		maxTokens = m.opts.MaxTokens
	}
	if err := req.Sampling.Validate(); err != nil {
		return Result{}, err
	}
	for _, s := range req.Stop {
		if err := checkText("stop string", s, 1024); err != nil {
			return Result{}, err
		}
	}
	if strings.IndexByte(req.Grammar, 0) >= 0 {
		return Result{}, invalid("grammar contains a NUL byte")
	}
	if req.Grammar != "" && req.Sampling.IgnoreEOS {
		// A complete grammar allows only the end token, which ignore_eos
		// forbids: nothing could be sampled.
		return Result{}, invalid("ignore_eos cannot be combined with a grammar")
	}
	var eog []llama.Token
	if req.Sampling.IgnoreEOS {
		eog = m.endOfGeneration()
	}
	smpl, err := newSampler(m.vocab, m.nVocab, req.Sampling, req.Grammar, eog)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	j := &job{
		ctx: ctx,
		gen: &genJob{prompt: tokens, sampler: smpl, maxTokens: maxTokens, stops: req.Stop},
		out: newStream(),
	}
	if err := m.sched.submit(j); err != nil {
		llama.SamplerFree(smpl)
		return Result{}, err
	}
	var evs []event
	var text strings.Builder
	for {
		evs, err = j.out.next(ctx, evs)
		if err != nil {
			return Result{}, err
		}
		text.Reset()
		for _, ev := range evs {
			switch {
			case ev.err != nil:
				return Result{}, ev.err
			case ev.result != nil:
				if err := emitText(emit, text.String()); err != nil {
					return Result{}, err
				}
				return *ev.result, nil
			default:
				text.WriteString(ev.text)
			}
		}
		if err := emitText(emit, text.String()); err != nil {
			return Result{}, err
		}
		// Pace the stream: what is decoded meanwhile goes out as one
		// piece. Every message wakes several goroutines on both ends, and
		// on a small board each wake-up can stall llama.cpp's workers.
		if m.opts.StreamInterval > 0 {
			select {
			case <-time.After(m.opts.StreamInterval):
			case <-ctx.Done():
				return Result{}, ctx.Err()
			}
		}
	}
}

func emitText(emit func(string) error, text string) error {
	if text == "" {
		return nil
	}
	return emit(text)
}

// Chat renders msgs with the model's chat template and generates the
// assistant's reply. The rendered prompt is returned in Result.Prompt.
func (m *Model) Chat(ctx context.Context, msgs []Message, req Request, emit func(text string) error) (Result, error) {
	if !m.generates {
		return Result{}, fmt.Errorf("%w: model %q is an embedding model and cannot chat", ErrInvalidRequest, m.Name())
	}
	segs, rendered, err := m.renderChat(msgs)
	if err != nil {
		return Result{}, err
	}
	tokens, err := m.tokenizeSegments(segs)
	if err != nil {
		return Result{}, err
	}
	res, err := m.generateTokens(ctx, tokens, req, emit)
	res.Prompt = rendered
	return res, err
}

// Token is one token of the model's vocabulary.
type Token struct {
	ID    int32
	Piece string
}

// Tokenize splits text into tokens. It does not wait for the scheduler:
// llama.cpp's tokenizer only reads the vocabulary.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]Token, error) {
	if err := checkText("text", text, m.opts.MaxPromptBytes); err != nil {
		return nil, err
	}
	ids := llama.Tokenize(m.vocab, text, addSpecial, parseSpecial)
	out := make([]Token, len(ids))
	for i, id := range ids {
		out[i] = Token{ID: int32(id), Piece: strings.ToValidUTF8(string(m.piece(id, true)), "\uFFFD")}
	}
	return out, nil
}

// tokenizeSegments validates and tokenizes a prompt. When no special-token
// text in the joined prompt takes a byte from a data segment, the prompt
// is tokenized as one string, so it gets exactly the tokens llama.cpp's
// own tools would produce; else segment by segment, with data never
// parsed for special tokens. The check runs over the joined text, not per
// segment: "<|im_" and "end|>" in two adjacent values, or "end|>" in a
// value after template text ending "<|im_", would otherwise join into a
// real <|im_end|>. Such text is neutralised (it stays plain text), not
// refused, as chat content that spells a token is.
func (m *Model) tokenizeSegments(segs []Segment) ([]llama.Token, error) {
	total := 0
	var whole strings.Builder
	for _, s := range segs {
		total += len(s.Text)
		whole.WriteString(s.Text)
	}
	_, split := inference.SpecialInData(segs, m.specials)
	if total == 0 {
		return nil, invalid("prompt is empty")
	}
	if err := checkText("prompt", whole.String(), m.opts.MaxPromptBytes); err != nil {
		return nil, err
	}
	if !split {
		return llama.Tokenize(m.vocab, whole.String(), true, true), nil
	}
	var tokens []llama.Token
	for i, s := range segs {
		tokens = append(tokens, llama.Tokenize(m.vocab, s.Text, i == 0, !s.Data)...)
	}
	return tokens, nil
}

// checkText refuses what must not reach llama.cpp's C strings.
func checkText(what, s string, limit int) error {
	switch {
	case len(s) > limit:
		return invalid("%s is %d bytes; the limit is %d (engine.max_prompt_bytes)", what, len(s), limit)
	case strings.IndexByte(s, 0) >= 0:
		return invalid("%s contains a NUL byte", what)
	case !utf8.ValidString(s):
		return invalid("%s is not valid UTF-8", what)
	}
	return nil
}

// piece returns the bytes of one token; special tokens render as their
// text only when special is true.
func (m *Model) piece(tok llama.Token, special bool) []byte {
	buf := make([]byte, 64)
	n := llama.TokenToPiece(m.vocab, tok, buf, 0, special)
	if n < 0 {
		buf = make([]byte, -n)
		n = llama.TokenToPiece(m.vocab, tok, buf, 0, special)
	}
	if n < 0 {
		return nil
	}
	return buf[:n]
}

// errIs reports whether err is one of targets.
func errIs(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// fdPath names an open file by its descriptor, so that another open of
// the name reaches the same file (Linux's /proc/self/fd).
func fdPath(fd *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", fd.Fd()) }

// afterValidate, when set (by tests), runs between validating a model
// file and handing it to llama.cpp.
var afterValidate func(path string)
