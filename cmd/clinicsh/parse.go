package main

import (
	"fmt"
	"strconv"
	"strings"
)

// A command is one simple command of a list: its words, its redirections,
// and the operator that joins it to the command before it ("", ";", "&&"
// or "||").
type command struct {
	join      string
	words     []string
	redirects []redirect
}

// A redirect is "N<FILE", "N>FILE", "N>>FILE" or "N>&M" for N and M in 0-2.
type redirect struct {
	fd   int
	op   string // "<", ">", ">>", ">&"
	file string // the file, or M for ">&"
}

// errUnsupported marks shell syntax this shell does not implement; the
// command is refused whole rather than run half-understood.
type errUnsupported struct{ what string }

func (e errUnsupported) Error() string {
	return fmt.Sprintf("unsupported: %s (this shell runs only simple commands joined by ;, && and ||, with quoting and redirections of 0, 1 and 2)", e.what)
}

// parse splits script into commands. Anything that would need expansion
// (variables, globs, command substitution, ~), pipes, background jobs,
// subshells or here-documents is refused.
func parse(script string) ([]command, error) {
	p := &parser{s: script}
	var out []command
	cur := command{}
	for {
		tok, op, err := p.next()
		if err != nil {
			return nil, err
		}
		switch {
		case op == "" && tok == nil: // end
			return finish(out, cur)
		case op == ";" || op == "&&" || op == "||":
			if len(cur.words) == 0 {
				return nil, fmt.Errorf("syntax error near %q", op)
			}
			out = append(out, cur)
			cur = command{join: op}
		case op != "":
			r, err := p.redirect(op)
			if err != nil {
				return nil, err
			}
			cur.redirects = append(cur.redirects, r)
		default:
			cur.words = append(cur.words, *tok)
		}
	}
}

// finish ends a script whose last command is cur: "a;" is a script,
// "a &&" and a lone redirection are not.
func finish(out []command, cur command) ([]command, error) {
	if len(cur.words) > 0 {
		return append(out, cur), nil
	}
	if cur.join != "" && cur.join != ";" || len(cur.redirects) > 0 {
		return nil, fmt.Errorf("syntax error: missing command at the end")
	}
	return out, nil
}

type parser struct {
	s string
	i int
}

// next returns the next word, or operator, or neither at the end.
func (p *parser) next() (*string, string, error) {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
	if p.i == len(p.s) {
		return nil, "", nil
	}
	if op := p.operator(); op != "" {
		return nil, op, nil
	}
	w, err := p.word()
	if err != nil {
		return nil, "", err
	}
	return &w, "", nil
}

// operator reads a control or redirection operator, with a redirection's
// file descriptor number in front.
func (p *parser) operator() string {
	rest := p.s[p.i:]
	fd := ""
	if len(rest) > 1 && rest[0] >= '0' && rest[0] <= '9' && (rest[1] == '<' || rest[1] == '>') {
		fd, rest = rest[:1], rest[1:]
	}
	for _, op := range []string{"&&", "||", ">>", ">&", ";", "<", ">"} {
		if strings.HasPrefix(rest, op) && (fd == "" || op[0] == '<' || op[0] == '>') {
			p.i += len(fd) + len(op)
			return fd + op
		}
	}
	return ""
}

// redirect reads the target of the redirection operator op.
func (p *parser) redirect(op string) (redirect, error) {
	r := redirect{fd: 1, op: op}
	if op[0] >= '0' && op[0] <= '9' {
		r.fd, r.op = int(op[0]-'0'), op[1:]
	} else if op == "<" {
		r.fd = 0
	}
	tok, next, err := p.next()
	if err != nil {
		return r, err
	}
	if tok == nil {
		return r, fmt.Errorf("syntax error: %q needs a file after it (got %q)", op, next)
	}
	r.file = *tok
	if r.fd > 2 {
		return r, errUnsupported{"file descriptor " + strconv.Itoa(r.fd)}
	}
	if r.op == ">&" && r.file != "0" && r.file != "1" && r.file != "2" {
		return r, errUnsupported{"duplicating " + strconv.Quote(r.file)}
	}
	return r, nil
}

// word reads one word with POSIX quoting: backslash outside quotes, '...'
// literally, "..." with \ escaping $ ` " \ and newline.
func (p *parser) word() (string, error) {
	var b strings.Builder
	for p.i < len(p.s) && !p.wordEnds() {
		var err error
		switch c := p.s[p.i]; {
		case c == '\\':
			err = p.escaped(&b)
		case c == '\'':
			err = p.singleQuoted(&b)
		case c == '"':
			err = p.doubleQuoted(&b)
		case strings.IndexByte("$`*?[]|&(){}\n", c) >= 0 || (c == '#' || c == '~') && b.Len() == 0:
			err = errUnsupported{fmt.Sprintf("%q outside quotes", c)}
		default:
			b.WriteByte(c)
			p.i++
		}
		if err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// wordEnds reports whether a blank or an operator begins at the parser's
// position.
func (p *parser) wordEnds() bool {
	switch p.s[p.i] {
	case ' ', '\t', ';', '<', '>':
		return true
	}
	return strings.HasPrefix(p.s[p.i:], "&&") || strings.HasPrefix(p.s[p.i:], "||")
}

// escaped reads a backslash and the character it quotes (a backslash
// before a newline joins the lines).
func (p *parser) escaped(b *strings.Builder) error {
	if p.i+1 == len(p.s) {
		return fmt.Errorf("syntax error: backslash at the end")
	}
	if p.s[p.i+1] != '\n' {
		b.WriteByte(p.s[p.i+1])
	}
	p.i += 2
	return nil
}

// singleQuoted reads a '...' part of a word, taken literally.
func (p *parser) singleQuoted(b *strings.Builder) error {
	end := strings.IndexByte(p.s[p.i+1:], '\'')
	if end < 0 {
		return fmt.Errorf("syntax error: unterminated '")
	}
	b.WriteString(p.s[p.i+1 : p.i+1+end])
	p.i += end + 2
	return nil
}

// doubleQuoted reads a "..." part of a word.
func (p *parser) doubleQuoted(b *strings.Builder) error {
	p.i++ // the opening quote
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return nil
		case c == '$' || c == '`':
			return errUnsupported{fmt.Sprintf("%q inside double quotes", c)}
		case c == '\\' && p.i+1 < len(p.s) && strings.IndexByte("$`\"\\\n", p.s[p.i+1]) >= 0:
			if p.s[p.i+1] != '\n' {
				b.WriteByte(p.s[p.i+1])
			}
			p.i += 2
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return fmt.Errorf(`syntax error: unterminated "`)
}
