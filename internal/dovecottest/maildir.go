package dovecottest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// MaildirMessage is a message for WriteMaildir.
type MaildirMessage struct {
	// Raw is the message as stored (CRLF line endings keep RFC822.SIZE
	// equal to len(Raw)).
	Raw []byte
	// Flags are IMAP system flags: \Seen, \Answered, \Flagged, \Deleted,
	// \Draft. Keywords are not supported.
	Flags []string
	// Date becomes the INTERNALDATE (the file's modification time).
	Date time.Time
}

// maildirFlags maps IMAP system flags to Maildir info letters.
var maildirFlags = map[string]byte{`\draft`: 'D', `\flagged`: 'F', `\answered`: 'R', `\seen`: 'S', `\deleted`: 'T'}

// WriteMaildir adds msgs to user's folder by writing Maildir files
// directly: thousands of messages take a fraction of a second, where
// APPEND takes milliseconds each. folder is the name the server shows
// ("INBOX", "Bench", "Projects/2024"; "INBOX.Sent" with LayoutCourier);
// it is created if needed. The messages get ascending UIDs in the order
// given, after those already in the folder. Call it while no IMAP session
// has the folder selected.
func (s *Server) WriteMaildir(user, folder string, msgs []MaildirMessage) error {
	home := filepath.Join(s.mailDir, user, "Maildir")
	dir := home
	if !strings.EqualFold(folder, "INBOX") {
		if s.layout == LayoutCourier {
			dir = filepath.Join(home, "."+strings.TrimPrefix(folder, "INBOX."))
		} else {
			dir = filepath.Join(home, filepath.FromSlash(folder))
		}
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := s.mkdirOwned(filepath.Join(dir, sub)); err != nil {
			return err
		}
	}
	// Dovecot gives new files UIDs in the order of their names.
	base := time.Now().Unix()
	seq := time.Now().UnixNano() % 1e6
	for i, m := range msgs {
		var info []byte
		for _, f := range m.Flags {
			c, ok := maildirFlags[strings.ToLower(f)]
			if !ok {
				return fmt.Errorf("dovecottest: flag %q: only system flags can be written to Maildir", f)
			}
			info = append(info, c)
		}
		slices.Sort(info)
		name := fmt.Sprintf("%d.M%06dP%09d.dovecottest,S=%d:2,%s", base, seq, i, len(m.Raw), info)
		path := filepath.Join(dir, "cur", name)
		if err := os.WriteFile(path, m.Raw, 0o600); err != nil {
			return err
		}
		if !m.Date.IsZero() {
			if err := os.Chtimes(path, m.Date, m.Date); err != nil {
				return err
			}
		}
		if s.ids.chown {
			if err := os.Chown(path, s.ids.mailUID, s.ids.mailGID); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkdirOwned creates dir and its missing parents, owned by the mail user.
func (s *Server) mkdirOwned(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := s.mkdirOwned(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return err
	}
	if s.ids.chown {
		return os.Chown(dir, s.ids.mailUID, s.ids.mailGID)
	}
	return nil
}
