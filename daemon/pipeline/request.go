package pipeline

import (
	"encoding/json"
	"fmt"

	"github.com/ember-edge/ember/daemon/inference"
	"github.com/ember-edge/ember/daemon/pipeline/guard"
)

// Request is what a job asks of the engine, and where its result goes. It
// is stored with the job, so it is self-contained: a job queued before a
// config reload runs as it was accepted.
type Request struct {
	Model  string `json:"model,omitempty"`
	System string `json:"system,omitempty"`
	// Prompt is the rendered prompt: template text and data segments.
	Prompt []inference.Segment `json:"prompt,omitempty"`
	// Messages, when set, is a whole chat (direct requests).
	Messages []inference.Message `json:"messages,omitempty"`
	// Raw generates from Prompt as is, without the chat template.
	Raw       bool   `json:"raw,omitempty"`
	MaxTokens int    `json:"max_tokens,omitempty"`
	Params    Params `json:"params"`
	Output    Output `json:"output"`
	Reply     Reply  `json:"reply"`
	// Input holds the fields extracted from the message, kept with the
	// result for context.
	Input     map[string]any `json:"input,omitempty"`
	Topic     string         `json:"topic,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	// Classification is fixed when the job is accepted and carried to its
	// result and dead letter: renaming or removing the pipeline later
	// cannot change where the data may go. Empty (a job queued by an
	// older emberd) counts as local.
	Classification string `json:"classification,omitempty"`
	// Guard is what the guard found in a message it flagged (the
	// pipeline's guard is flag); nil when it found nothing to flag. It is
	// carried to the result.
	Guard *guard.Report `json:"guard,omitempty"`
}

// Class returns the request's classification; unknown means local, so
// that a gap fails closed.
func (r Request) Class() string {
	if r.Classification == ClassShared {
		return ClassShared
	}
	return ClassLocal
}

// The classifications: shared data may leave the device (redacted),
// local data never does.
const (
	ClassShared = "shared"
	ClassLocal  = "local"
)

// Params are sampling parameters; nil leaves the engine's default.
type Params struct {
	Temperature   *float32 `json:"temperature,omitempty"`
	TopK          *int32   `json:"top_k,omitempty"`
	TopP          *float32 `json:"top_p,omitempty"`
	MinP          *float32 `json:"min_p,omitempty"`
	RepeatPenalty *float32 `json:"repeat_penalty,omitempty"`
	Seed          *uint32  `json:"seed,omitempty"`
	Stop          []string `json:"stop,omitempty"`
}

// Sampling applies p over the engine's defaults.
func (p Params) Sampling() inference.Sampling {
	s := inference.DefaultSampling()
	if p.Temperature != nil {
		s.Temperature = *p.Temperature
	}
	if p.TopK != nil {
		s.TopK = *p.TopK
	}
	if p.TopP != nil {
		s.TopP = *p.TopP
	}
	if p.MinP != nil {
		s.MinP = *p.MinP
	}
	if p.RepeatPenalty != nil {
		s.RepeatPenalty = *p.RepeatPenalty
	}
	if p.Seed != nil {
		s.Seed, s.HasSeed = *p.Seed, true
	}
	return s
}

// Output is the form of the result.
type Output struct {
	// Format is "text" or "json".
	Format string `json:"format"`
	// Schema is the JSON Schema a JSON output must follow.
	Schema json.RawMessage `json:"schema,omitempty"`
}

// Reply says where the result and failures are published.
type Reply struct {
	// Broker is the broker the message came from, "embedded" or
	// "external"; the result goes back there.
	Broker     string `json:"broker,omitempty"`
	Topic      string `json:"topic,omitempty"`
	QoS        byte   `json:"qos"`
	Retain     bool   `json:"retain,omitempty"`
	ErrorTopic string `json:"error_topic,omitempty"`
	// CorrelationData is echoed on an MQTT 5 reply.
	CorrelationData []byte `json:"correlation_data,omitempty"`
}

// Encode serialises a request for the store.
func (r Request) Encode() (json.RawMessage, error) { return json.Marshal(r) }

// DecodeRequest parses a stored request.
func DecodeRequest(data []byte) (Request, error) {
	var r Request
	if err := json.Unmarshal(data, &r); err != nil {
		return Request{}, fmt.Errorf("decode job request: %w", err)
	}
	return r, nil
}
