// Package guard scores a message's data for text that reads like
// instructions to a language model (prompt injection).
//
// A pipeline's prompt keeps payload values apart from its instructions
// (they render as quoted data segments, and the engine never parses data
// for control tokens), but a model still reads what the data says. The
// guard looks for what sensor and PLC data has no reason to say. It is a
// heuristic: it raises the cost of an attack and tells the operator, it
// does not prove a message harmless.
//
// Every piece of text is looked at in three views: raw (zero-width
// characters dropped, full-width ASCII folded to ASCII, lower case),
// words (raw with every run of characters that are neither letters nor
// digits turned into one space: quotes, punctuation and line breaks
// between words do not hide a phrase) and compact (raw with no spaces or
// punctuation at all, for Japanese). The rules, with their weights:
//
//   - ignore-instructions (3): "ignore / disregard / forget / neglect"
//     followed within a few words by "previous / prior / above / earlier /
//     all / your / system …" and "instructions / prompt / rules /
//     directions / guidelines"; "disregard the above"; "forget everything
//     you were told".
//   - you-are-now (3): "you are now a/an/the/no longer/free/DAN …", "from
//     now on you", "pretend to be", "act as an unrestricted …"; a bare "you
//     are now" (an HMI may say "you are now in manual mode") weighs 1.
//   - system-prompt (3): "system prompt", "reveal / print / repeat …
//     your instructions or prompt", "developer mode", "jailbreak", "do
//     anything now".
//   - new-instructions (2): "new instructions", "updated instructions".
//   - imperative (2): "you must obey / respond / output …", "without any
//     restrictions".
//   - role-marker: a line starting "assistant:" or "### Instruction /
//     System / Response / Input" (3), "system:", "user:" or "human:" (2: a
//     PLC message may well start "System: hydraulics").
//   - template-token (3): chat-template tokens: <|…|> (ChatML, Llama 3,
//     Phi), [INST], [/INST], <<SYS>>, <s>, </s>, <start_of_turn>,
//     <end_of_turn>, and a value that begins or ends with half of one
//     ("<|im_" … "end|>"), which another field may complete.
//   - ja-ignore-instructions (3): 「以前の指示を無視」「これまでの指示を無視して」
//     and the like: (以前|これまで|今まで|前|上記|先ほど|全て|すべて)の
//     (指示|命令|指令|プロンプト|ルール)を…(無視|忘れ).
//   - ja-you-are-now (3): 「あなたは今から」「今からあなたは」「これからあなたは」.
//   - ja-system-prompt (3): 「システムプロンプト」; ja-new-instructions (2):
//     「新しい指示」.
//   - de-ignore-instructions (3): „Ignoriere alle vorherigen Anweisungen“,
//     „Vergiss deine Anweisungen“: ignorier…/vergiss/missachte… then
//     (vorherig…|vorig…|bisherig…|obig…|früher…|alle|deine|ihre) then
//     (Anweisungen|Instruktionen|Befehle|Regeln|Vorgaben), without a
//     "nicht" between them.
//   - de-you-are-now (3): „Du bist jetzt“, „Ab sofort bist du“, „Von nun
//     an bist du“.
//   - de-system-prompt (3): „Systemprompt“, „Systemanweisung“;
//     de-new-instructions (2): „neue Anweisungen“.
//   - base64: a run of 20 or more base64 characters that decodes to
//     printable UTF-8 text is scanned in turn (two levels deep); what
//     matches inside counts with its own weight, named "base64:<rule>".
//     Binary blobs (sensor frames) decode to non-text and are skipped.
//
// A rule counts once however often it matches; the score is the sum of
// the weights of the rules that matched, and a score of Threshold or more
// flags the message. Known gaps: homoglyphs (a Cyrillic "о" in "ignore"),
// letters spaced apart, other languages, and paraphrase.
package guard
