package engine

import (
	"fmt"
	"strings"

	"github.com/hybridgroup/yzma/pkg/llama"
)

// FallbackTemplate is the chat format used when a model has no chat
// template or llama.cpp does not recognise the one it has. ChatML is what
// most small instruction-tuned models were trained on.
const FallbackTemplate = "chatml"

// renderChat renders msgs with the model's template, returning the prompt
// as segments (template text, then each message's content as data) and as
// one string. Contents are rendered as placeholders first, so the template
// cannot be confused by what a message says.
func (m *Model) renderChat(msgs []Message) ([]Segment, string, error) {
	if len(msgs) == 0 {
		return nil, "", invalid("chat has no messages")
	}
	marks := make([]string, len(msgs))
	cms := make([]llama.ChatMessage, len(msgs))
	for i, msg := range msgs {
		switch msg.Role {
		case "system", "user", "assistant", "tool":
		default:
			return nil, "", invalid("message %d has role %q; want system, user, assistant or tool", i, msg.Role)
		}
		if err := checkText(fmt.Sprintf("message %d", i), msg.Content, m.opts.MaxPromptBytes); err != nil {
			return nil, "", err
		}
		marks[i] = fmt.Sprintf("\x01ember-content-%d\x01", i)
		cms[i] = llama.NewChatMessage(msg.Role, marks[i])
	}
	text, ok := applyTemplate(m.template, cms)
	if !ok {
		text, ok = applyTemplate(FallbackTemplate, cms)
	}
	if !ok {
		return nil, "", fmt.Errorf("chat template: llama.cpp rendered nothing")
	}

	var segs []Segment
	var rendered strings.Builder
	for i, mark := range marks {
		before, after, found := strings.Cut(text, mark)
		if !found {
			// The template left this message out (some drop system
			// messages); so does the prompt.
			continue
		}
		segs = append(segs, Segment{Text: before}, Segment{Text: msgs[i].Content, Data: true})
		rendered.WriteString(before)
		rendered.WriteString(msgs[i].Content)
		text = after
	}
	segs = append(segs, Segment{Text: text})
	rendered.WriteString(text)
	return segs, rendered.String(), nil
}

// applyTemplate renders with llama.cpp's built-in template support. An
// empty or unrecognised template reports false.
func applyTemplate(tmpl string, msgs []llama.ChatMessage) (string, bool) {
	if tmpl == "" || strings.IndexByte(tmpl, 0) >= 0 {
		return "", false
	}
	buf := make([]byte, 4096)
	n := llama.ChatApplyTemplate(tmpl, msgs, true, buf)
	if n > int32(len(buf)) {
		buf = make([]byte, n)
		n = llama.ChatApplyTemplate(tmpl, msgs, true, buf)
	}
	if n <= 0 || n > int32(len(buf)) {
		return "", false
	}
	return string(buf[:n]), true
}
