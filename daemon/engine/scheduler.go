package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hybridgroup/yzma/pkg/llama"
)

// job is one request waiting for, or being served by, the scheduler.
type job struct {
	ctx context.Context
	gen *genJob
	emb *embedJob
	out *stream
}

type genJob struct {
	prompt    []llama.Token
	sampler   llama.Sampler
	maxTokens int
	stops     []string
}

// sequence is a generation in progress, occupying one slot of the context.
type sequence struct {
	id  llama.SeqId
	job *job

	nPrompt   int // prompt tokens already in the KV cache
	nPast     int // tokens in the KV cache
	next      llama.Token
	hasNext   bool // next is sampled but not yet decoded
	generated int
	text      *textStream

	started    time.Time
	firstToken time.Time

	// Per step: where this sequence's tokens sit in the batch.
	inBatch  int   // tokens added this step
	logitIdx int32 // batch index of its logits row, or -1
}

// Stats are a scheduler's counters.
type Stats struct {
	QueueDepth    int
	QueueCapacity int
	Active        int
	Requests      uint64
	Tokens        uint64
	Cancelled     uint64
}

// scheduler owns a model's llama.cpp contexts: only its goroutine calls
// into them. It admits queued jobs into free sequence slots and advances
// every active sequence by one batched llama_decode per step.
type scheduler struct {
	m       *Model
	lctx    llama.Context
	mem     llama.Memory
	batch   llama.Batch
	nCtxSeq int
	nBatch  int
	slots   []*sequence
	active  int

	emb *embedder // created on first use

	queue chan *job
	quit  chan struct{}
	done  chan struct{}
	// ctrl carries changes to the context (threads) to the goroutine that
	// owns it; they apply between steps.
	ctrl chan func()
	// limit caps active sequences below len(slots) (the thermal governor).
	limit atomic.Int32

	mu     sync.RWMutex // guards closed against submit
	closed bool

	// stepStart is when the llama_decode in progress began (unix ns), or
	// 0: a decode that never returns is what the watchdog looks for.
	stepStart  atomic.Int64
	nActive    atomic.Int32
	nRequests  atomic.Uint64
	nTokens    atomic.Uint64
	nCancelled atomic.Uint64
}

func newScheduler(m *Model) (*scheduler, error) {
	st := m.settings
	cp := llama.ContextDefaultParams()
	cp.NCtx = uint32(st.Context * st.Parallel)
	cp.NBatch = uint32(st.BatchSize)
	cp.NUbatch = uint32(st.BatchSize)
	cp.NSeqMax = uint32(st.Parallel)
	cp.NThreads = int32(st.Threads)
	cp.NThreadsBatch = int32(st.Threads)
	lctx, err := llama.InitFromModel(m.lm, cp)
	if err != nil || lctx == 0 {
		return nil, llamaError(fmt.Sprintf("create llama.cpp context (%d tokens, %d threads)", cp.NCtx, st.Threads), err)
	}
	mem, err := llama.GetMemory(lctx)
	if err != nil {
		llama.Free(lctx)
		return nil, fmt.Errorf("create llama.cpp context: %w", err)
	}
	s := &scheduler{
		m:       m,
		lctx:    lctx,
		mem:     mem,
		batch:   llama.BatchInit(int32(st.BatchSize+st.Parallel), 0, 1),
		nCtxSeq: int(llama.NCtxSeq(lctx)),
		nBatch:  st.BatchSize,
		slots:   make([]*sequence, st.Parallel),
		queue:   make(chan *job, m.opts.QueueSize),
		ctrl:    make(chan func(), 4),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	// llama.cpp rounds the context up (to a multiple of 256); report what
	// the model really runs with.
	m.settings.Context = s.nCtxSeq
	s.limit.Store(int32(st.Parallel))
	go s.run()
	return s, nil
}

// submit queues j, or fails at once when the queue is full: a caller
// learns immediately that the appliance is saturated.
func (s *scheduler) submit(j *job) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("model %q: %w", s.m.Name(), ErrUnloaded)
	}
	select {
	case s.queue <- j:
		s.nRequests.Add(1)
		return nil
	default:
		return fmt.Errorf("model %q: %w (%d waiting): retry later or raise engine.queue_size",
			s.m.Name(), ErrQueueFull, cap(s.queue))
	}
}

func (s *scheduler) stats() Stats {
	return Stats{
		QueueDepth:    len(s.queue),
		QueueCapacity: cap(s.queue),
		Active:        int(s.nActive.Load()),
		Requests:      s.nRequests.Load(),
		Tokens:        s.nTokens.Load(),
		Cancelled:     s.nCancelled.Load(),
	}
}

// close stops the loop and waits for it; queued and active requests fail
// with ErrUnloaded.
func (s *scheduler) close() {
	close(s.quit)
	<-s.done
}

func (s *scheduler) run() {
	defer close(s.done)
	defer s.shutdown()
	for {
		if s.active == 0 {
			select {
			case <-s.quit:
				return
			case fn := <-s.ctrl:
				fn()
				continue
			case j := <-s.queue:
				s.admit(j)
			}
		}
		s.admitWaiting()
		select {
		case <-s.quit:
			return
		case fn := <-s.ctrl:
			fn()
		default:
		}
		s.step()
	}
}

// admitWaiting takes queued jobs while a slot is free, without blocking.
func (s *scheduler) admitWaiting() {
	for s.active < min(len(s.slots), int(max(s.limit.Load(), 1))) {
		select {
		case j := <-s.queue:
			s.admit(j)
		default:
			return
		}
	}
}

func (s *scheduler) admit(j *job) {
	if err := j.ctx.Err(); err != nil {
		s.nCancelled.Add(1)
		if j.gen != nil {
			llama.SamplerFree(j.gen.sampler)
		}
		j.out.push(event{err: err})
		return
	}
	if j.emb != nil {
		s.embed(j)
		return
	}
	for i, slot := range s.slots {
		if slot == nil {
			s.slots[i] = &sequence{
				id:       llama.SeqId(i),
				job:      j,
				text:     newTextStream(j.gen.stops),
				started:  time.Now(),
				logitIdx: -1,
			}
			s.active++
			s.nActive.Store(int32(s.active))
			return
		}
	}
	// Unreachable: callers admit only while a slot is free.
	llama.SamplerFree(j.gen.sampler)
	j.out.push(event{err: fmt.Errorf("model %q: %w", s.m.Name(), ErrQueueFull)})
}

// step advances every active sequence: one decoded token each, and a
// chunk of prompt for those still reading theirs.
func (s *scheduler) step() {
	_ = s.batch.Clear()
	budget := s.nBatch
	for _, q := range s.slots {
		if q == nil {
			continue
		}
		q.inBatch, q.logitIdx = 0, -1
		// Checked every step, so a cancelled or disconnected caller stops
		// decoding within one token.
		if err := q.job.ctx.Err(); err != nil {
			s.nCancelled.Add(1)
			s.finish(q, nil, err)
			continue
		}
		if q.hasNext {
			if q.nPast >= s.nCtxSeq {
				s.finish(q, &Result{FinishReason: FinishContext}, nil)
				continue
			}
			_ = s.batch.Add(q.next, llama.Pos(q.nPast), []llama.SeqId{q.id}, true)
			q.inBatch, q.logitIdx = 1, s.batch.NTokens-1
		}
	}
	budget -= int(s.batch.NTokens)
	for _, q := range s.slots {
		if q == nil || q.hasNext || budget <= 0 {
			continue
		}
		prompt := q.job.gen.prompt
		n := min(budget, len(prompt)-q.nPrompt)
		for i := range n {
			pos := q.nPrompt + i
			last := pos == len(prompt)-1
			_ = s.batch.Add(prompt[pos], llama.Pos(pos), []llama.SeqId{q.id}, last)
			if last {
				q.logitIdx = s.batch.NTokens - 1
			}
		}
		q.inBatch = n
		budget -= n
	}
	if s.batch.NTokens == 0 {
		return
	}
	s.stepStart.Store(time.Now().UnixNano())
	ret, err := llama.Decode(s.lctx, s.batch)
	s.stepStart.Store(0)
	if err != nil || ret != 0 {
		s.failBatch(ret, err)
		return
	}
	for _, q := range s.slots {
		if q == nil || q.inBatch == 0 {
			continue
		}
		if q.hasNext {
			q.hasNext = false
		} else {
			q.nPrompt += q.inBatch
		}
		q.nPast += q.inBatch
		if q.logitIdx >= 0 {
			s.accept(q, llama.SamplerSample(q.job.gen.sampler, s.lctx, q.logitIdx))
		}
	}
}

// accept handles a sampled token: it ends the sequence, or emits its text
// and queues it for the next step.
func (s *scheduler) accept(q *sequence, tok llama.Token) {
	if q.firstToken.IsZero() {
		q.firstToken = time.Now()
	}
	if llama.VocabIsEOG(s.m.vocab, tok) {
		s.finish(q, &Result{FinishReason: FinishStop}, nil)
		return
	}
	q.generated++
	s.nTokens.Add(1)
	out, stop, stopped := q.text.push(s.m.piece(tok, false))
	if out != "" {
		q.job.out.push(event{text: out})
	}
	switch {
	case stopped:
		s.finish(q, &Result{FinishReason: FinishStop, Stop: stop}, nil)
	case q.generated >= q.job.gen.maxTokens:
		s.finish(q, &Result{FinishReason: FinishLength}, nil)
	default:
		q.next, q.hasNext = tok, true
	}
}

// finish ends a sequence with a result or an error and frees its slot.
func (s *scheduler) finish(q *sequence, res *Result, err error) {
	if res != nil {
		if res.Stop == "" {
			if rest := q.text.flush(); rest != "" {
				q.job.out.push(event{text: rest})
			}
		}
		now := time.Now()
		res.PromptTokens = len(q.job.gen.prompt)
		res.CompletionTokens = q.generated
		res.Duration = now.Sub(q.started)
		if !q.firstToken.IsZero() {
			res.TimeToFirstToken = q.firstToken.Sub(q.started)
		}
		q.job.out.push(event{result: res})
	} else {
		q.job.out.push(event{err: err})
	}
	_, _ = llama.MemorySeqRm(s.mem, q.id, -1, -1)
	llama.SamplerFree(q.job.gen.sampler)
	s.slots[q.id] = nil
	s.active--
	s.nActive.Store(int32(s.active))
}

// failBatch ends every sequence in a batch llama.cpp could not decode.
func (s *scheduler) failBatch(ret int32, err error) {
	err = decodeError(ret, err)
	s.m.opts.Logger.Error("decode failed", "model", s.m.Name(), "err", err)
	for _, q := range s.slots {
		if q != nil && q.inBatch > 0 {
			s.finish(q, nil, err)
		}
	}
}

// shutdown fails everything still active or queued and frees the contexts.
func (s *scheduler) shutdown() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	gone := fmt.Errorf("model %q: %w", s.m.Name(), ErrUnloaded)
	for _, q := range s.slots {
		if q != nil {
			s.finish(q, nil, gone)
		}
	}
	for {
		select {
		case j := <-s.queue:
			if j.gen != nil {
				llama.SamplerFree(j.gen.sampler)
			}
			j.out.push(event{err: gone})
			continue
		default:
		}
		break
	}
	if s.emb != nil {
		s.emb.free()
	}
	_ = llama.BatchFree(s.batch)
	_ = llama.Free(s.lctx)
}
