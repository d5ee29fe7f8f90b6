package imapsrc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/textproto"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailferry/mailferry/migrate"
)

// List calls fn with the metadata of every message of folder f, in
// ascending UID order, as the server streams it: one
// UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE
// BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]) on the folder opened read-only.
// Nothing is collected: memory does not grow with the folder.
//
// If the folder's UIDVALIDITY differs from f.UIDValidity (when that is
// not 0), List returns an error matching migrate.ErrUIDValidityChanged.
// If the connection drops, List reconnects, checks UIDVALIDITY again and
// goes on after the last UID given to fn. If fn returns an error, List
// stops and returns it unchanged.
func (s *Source) List(ctx context.Context, f migrate.Folder, fn func(migrate.MessageInfo) error) error {
	var last imap.UID // last UID given to fn
	delivered := 0
	want := f.UIDValidity
	what := fmt.Sprintf("list %q", f.Name)
	err := s.do(ctx, what, func() int { return delivered }, func(c *imapclient.Client, _ *serverInfo) error {
		sel, err := examine(c, f.Name, &want)
		if err != nil {
			return err
		}
		if sel.NumMessages == 0 {
			return nil
		}
		var set imap.UIDSet
		set.AddRange(last+1, 0) // last+1:*
		cmd := c.Fetch(set, &imap.FetchOptions{
			UID:          true,
			Flags:        true,
			InternalDate: true,
			RFC822Size:   true,
			BodySection:  []*imap.FetchItemBodySection{messageIDSection},
		})
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			info, err := readInfo(msg, nil)
			if err != nil {
				s.abort(c, cmd) // the stream is out of step; start afresh
				return err
			}
			// "last+1:*" includes the highest UID even when it is lower
			// than last+1 (RFC 9051 section 6.4.9); skip what fn has seen.
			if info.UID == 0 || imap.UID(info.UID) <= last {
				continue
			}
			if err := fn(info); err != nil {
				// Abandon the rest of the listing without reading it.
				s.abort(c, cmd)
				return &callbackError{err}
			}
			last = imap.UID(info.UID)
			delivered++
		}
		if err := cmd.Close(); err != nil {
			return fmt.Errorf("UID FETCH: %w", err)
		}
		return nil
	})
	return unwrapCallback(what, err)
}

// messageIDSection is BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)].
var messageIDSection = &imap.FetchItemBodySection{
	Specifier:    imap.PartSpecifierHeader,
	HeaderFields: []string{"Message-ID"},
	Peek:         true,
}

// examine opens mailbox read-only and checks its UIDVALIDITY against
// *want, or sets *want when it is 0.
func examine(c *imapclient.Client, mailbox string, want *uint32) (*imap.SelectData, error) {
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, fmt.Errorf("EXAMINE: %w", err)
	}
	if *want == 0 {
		*want = sel.UIDValidity
	} else if sel.UIDValidity != *want {
		return nil, fmt.Errorf("UIDVALIDITY is %d, was %d: %w", sel.UIDValidity, *want, migrate.ErrUIDValidityChanged)
	}
	return sel, nil
}

// readInfo reads the metadata items of one FETCH response up to its body
// section. For a BODY[HEADER.FIELDS] section it parses the Message-ID; for
// a BODY[] section it stops and returns the section's literal in *body.
func readInfo(msg *imapclient.FetchMessageData, body *imap.LiteralReader) (migrate.MessageInfo, error) {
	var info migrate.MessageInfo
	for {
		item := msg.Next()
		if item == nil {
			return info, nil
		}
		switch item := item.(type) {
		case imapclient.FetchItemDataUID:
			info.UID = uint32(item.UID)
		case imapclient.FetchItemDataFlags:
			info.Flags = convertFlags(item.Flags)
		case imapclient.FetchItemDataInternalDate:
			info.InternalDate = item.Time
		case imapclient.FetchItemDataRFC822Size:
			info.Size = item.Size
		case imapclient.FetchItemDataBodySection:
			if item.Section != nil && item.Section.Specifier == imap.PartSpecifierHeader {
				if item.Literal != nil {
					hdr, err := io.ReadAll(newBodyReader(item.Literal))
					if err != nil {
						return info, fmt.Errorf("read header: %w", err)
					}
					info.MessageID = parseMessageID(hdr)
				}
				continue
			}
			if body != nil {
				*body = item.Literal
				return info, nil
			}
		}
	}
}

// convertFlags converts flags, leaving out \Recent (a session flag that
// cannot be stored anywhere).
func convertFlags(flags []imap.Flag) []migrate.Flag {
	out := make([]migrate.Flag, 0, len(flags))
	for _, f := range flags {
		if strings.EqualFold(string(f), `\Recent`) {
			continue
		}
		out = append(out, migrate.Flag(f))
	}
	return out
}

// parseMessageID returns the Message-ID of a header block, angle brackets
// kept, or "".
func parseMessageID(hdr []byte) string {
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(hdr), strings.NewReader("\r\n\r\n"))))
	h, _ := r.ReadMIMEHeader()
	v := strings.TrimSpace(h.Get("Message-Id"))
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			return v[i : i+j+1]
		}
	}
	return v
}
