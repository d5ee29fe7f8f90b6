package migratetest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-message/textproto"

	"github.com/mailferry/mailferry/migrate"
)

// Fixture is a mailbox to seed a source with: folders, each with messages.
type Fixture struct {
	Folders []FixtureFolder
}

// FixtureFolder is a folder of a Fixture.
type FixtureFolder struct {
	// Path is the folder's hierarchy below the user's root: ["INBOX"] is
	// the inbox, ["Projects", "2024"] a nested folder.
	Path []string
	// Role is the folder's special use; a seeded server must report it.
	Role     migrate.Role
	Messages []FixtureMessage
}

// FixtureMessage is a message of a Fixture.
type FixtureMessage struct {
	// Raw is the whole message, with CRLF line endings.
	Raw          []byte
	Flags        []migrate.Flag
	InternalDate time.Time
}

// MessageID returns the message's Message-ID header, or "".
func (m FixtureMessage) MessageID() string {
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(m.Raw)))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(h.Get("Message-Id"))
}

// Count returns the number of messages in the fixture.
func (f *Fixture) Count() int {
	n := 0
	for _, fo := range f.Folders {
		n += len(fo.Messages)
	}
	return n
}

// Sample returns a realistic mailbox: Inbox with read, unread, flagged and
// answered messages, a keyword, a multipart message with a binary
// attachment and non-ASCII headers; Sent, Drafts (a \Draft message),
// Trash, Junk and Archive with their roles; nested folders; and non-ASCII
// folder names. The role folders are named as Dovecot's default
// special-use configuration names them (Sent, Drafts, Trash, Junk,
// Archive). Every call returns a fresh copy.
func Sample() *Fixture {
	d := func(day, hour int) time.Time { return time.Date(2024, time.March, day, hour, 15, 42, 0, time.UTC) }
	return &Fixture{Folders: []FixtureFolder{
		{Path: []string{"INBOX"}, Role: migrate.RoleInbox, Messages: []FixtureMessage{
			{Raw: textMessage(1, "Carol <carol@example.org>", "alice@example.com", "Lunch on Friday?", "Shall we try the new place?"),
				Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: d(1, 9)},
			{Raw: textMessage(2, "Bob <bob@example.net>", "alice@example.com", "Quarterly numbers", "Figures attached next week."),
				Flags: []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged, migrate.FlagAnswered, "Work"}, InternalDate: d(2, 10)},
			{Raw: attachmentMessage(3), Flags: []migrate.Flag{migrate.FlagFlagged}, InternalDate: d(3, 11)},
			{Raw: textMessage(4, "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>", "alice@example.com",
				"=?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=", "Bis bald in M=C3=BCnchen!"), InternalDate: d(4, 12)},
		}},
		{Path: []string{"Sent"}, Role: migrate.RoleSent, Messages: []FixtureMessage{
			{Raw: textMessage(5, "Alice <alice@example.com>", "carol@example.org", "Re: Lunch on Friday?", "Yes, noon."),
				Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: d(1, 13)},
			{Raw: textMessage(6, "Alice <alice@example.com>", "bob@example.net", "Re: Quarterly numbers", "Thanks Bob."),
				Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: d(2, 14)},
		}},
		{Path: []string{"Drafts"}, Role: migrate.RoleDrafts, Messages: []FixtureMessage{
			{Raw: textMessage(7, "Alice <alice@example.com>", "team@example.com", "Draft: offsite agenda", "1. Welcome\r\n2. ..."),
				Flags: []migrate.Flag{migrate.FlagSeen, migrate.FlagDraft}, InternalDate: d(5, 8)},
		}},
		{Path: []string{"Trash"}, Role: migrate.RoleTrash, Messages: []FixtureMessage{
			{Raw: textMessage(8, "Newsletter <news@example.com>", "alice@example.com", "Weekly digest", "Old news."),
				Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: d(6, 7)},
		}},
		{Path: []string{"Junk"}, Role: migrate.RoleJunk, Messages: []FixtureMessage{
			{Raw: textMessage(9, "Prize <win@spam.example>", "alice@example.com", "You won!", "Click here."), InternalDate: d(7, 3)},
		}},
		{Path: []string{"Archive"}, Role: migrate.RoleArchive, Messages: []FixtureMessage{
			{Raw: textMessage(10, "Dave <dave@example.com>", "alice@example.com", "2023 recap", "What a year."),
				Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: d(8, 16)},
		}},
		{Path: []string{"Projects"}, Messages: []FixtureMessage{
			{Raw: textMessage(11, "Erin <erin@example.com>", "alice@example.com", "Project kickoff", "Kickoff is on Monday."),
				Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: d(9, 9)},
		}},
		{Path: []string{"Projects", "2024"}, Messages: []FixtureMessage{
			{Raw: textMessage(12, "Erin <erin@example.com>", "alice@example.com", "Milestone 1", "Done."),
				Flags: []migrate.Flag{migrate.FlagSeen, migrate.FlagFlagged}, InternalDate: d(10, 10)},
			{Raw: textMessage(13, "Frank <frank@example.com>", "alice@example.com", "Milestone 2", "Slipping a week."), InternalDate: d(11, 11)},
		}},
		{Path: []string{"Café"}, Messages: []FixtureMessage{
			{Raw: textMessage(14, "=?UTF-8?Q?Ren=C3=A9e?= <renee@example.fr>", "alice@example.com", "=?UTF-8?Q?Caf=C3=A9_cr=C3=A8me?=",
				"=C3=80 demain."), Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: d(12, 15)},
		}},
		{Path: []string{"Café", "Réunions"}, Messages: []FixtureMessage{
			{Raw: textMessage(15, "=?UTF-8?Q?Ren=C3=A9e?= <renee@example.fr>", "alice@example.com", "=?UTF-8?Q?R=C3=A9union_de_lundi?=",
				"Ordre du jour ci-dessous."), InternalDate: d(13, 16)},
		}},
	}}
}

func crlf(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

func textMessage(n int, from, to, subject, body string) []byte {
	return crlf(
		fmt.Sprintf("Message-ID: <sample-%d@mailferry.test>", n),
		fmt.Sprintf("Date: Fri, %02d Mar 2024 08:00:00 +0100", n%28+1),
		"From: "+from,
		"To: "+to,
		"Subject: "+subject,
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: quoted-printable",
		"",
		body,
	)
}

func attachmentMessage(n int) []byte {
	bin := make([]byte, 3000)
	for i := range bin {
		bin[i] = byte(i*7 + i/13)
	}
	enc := base64.StdEncoding.EncodeToString(bin)
	var wrapped []string
	for len(enc) > 76 {
		wrapped = append(wrapped, enc[:76])
		enc = enc[76:]
	}
	wrapped = append(wrapped, enc)
	lines := []string{
		fmt.Sprintf("Message-ID: <sample-%d@mailferry.test>", n),
		"Date: Sun, 03 Mar 2024 11:00:00 +0100",
		"From: =?UTF-8?Q?Zo=C3=AB_=C3=85gren?= <zoe@example.se>",
		"To: alice@example.com",
		"Subject: =?UTF-8?Q?Rapport_f=C3=B6r_m=C3=A4rz_=E2=80=94_with_attachment?=",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="mf-boundary-1"`,
		"",
		"This is a multi-part message in MIME format.",
		"--mf-boundary-1",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		"Hej Alice, här är rapporten.",
		"--mf-boundary-1",
		`Content-Type: application/octet-stream; name="rapport.bin"`,
		`Content-Disposition: attachment; filename="rapport.bin"`,
		"Content-Transfer-Encoding: base64",
		"",
	}
	lines = append(lines, wrapped...)
	lines = append(lines, "--mf-boundary-1--")
	return crlf(lines...)
}
