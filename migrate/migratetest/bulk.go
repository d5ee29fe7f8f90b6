package migratetest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// BulkMessage returns generated message n: a short text message (with
// about pad more bytes of text), or, with attachment > 0, a
// multipart/mixed message carrying a file "big-<n>.bin" of that many
// pseudo-random bytes, which it returns too. Its Message-ID is
// <fault-<n>@mailferry.test>. The same arguments always give the same
// bytes.
func BulkMessage(n, pad, attachment int) (raw, payload []byte) {
	head := fmt.Sprintf("Message-ID: <fault-%d@mailferry.test>\r\nDate: Mon, 04 Mar 2024 09:%02d:00 +0100\r\n"+
		"From: Grace <grace@example.org>\r\nTo: alice@example.com\r\nSubject: Fault suite message %d\r\nMIME-Version: 1.0\r\n",
		n, n%60, n)
	if attachment <= 0 {
		filler := strings.Repeat("All work and no play makes a dull migration.\r\n", max(pad, 0)/46)
		return []byte(head + "Content-Type: text/plain; charset=us-ascii\r\n\r\nMessage " + strconv.Itoa(n) + " of the fault suite.\r\n" + filler), nil
	}
	payload = make([]byte, attachment)
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("mailferry fault payload %d", n))
	rand.NewChaCha8(seed).Read(payload)
	var b bytes.Buffer
	name := "big-" + strconv.Itoa(n) + ".bin"
	b.WriteString(head + "Content-Type: multipart/mixed; boundary=\"fault-b\"\r\n\r\n" +
		"--fault-b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThe file is attached.\r\n" +
		"--fault-b\r\nContent-Type: application/octet-stream; name=\"" + name + "\"\r\n" +
		"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"" + name + "\"\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(payload)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n--fault-b--\r\n")
	return b.Bytes(), payload
}

// BulkFixture returns the Sample mailbox with small more messages
// (BulkMessage 100, 101, …, each about pad bytes longer), alternately in
// INBOX and in a folder "Bulk", every third one read; and one message per
// entry of large (BulkMessage 10000, 10001, …), with an attachment of
// that many bytes, read, in a folder "Large" (left out when large is
// empty). It returns the attachments by Message-ID, to check them whole
// on the target. Fault and load tests use it: a mailbox of any size, with
// messages large enough to need a target's upload path.
func BulkFixture(small, pad int, large ...int) (*Fixture, map[string][]byte) {
	fx := Sample()
	date := time.Date(2024, time.March, 4, 9, 0, 0, 0, time.UTC)
	bulk := FixtureFolder{Path: []string{"Bulk"}}
	for i := range small {
		raw, _ := BulkMessage(100+i, pad, 0)
		m := FixtureMessage{Raw: raw, InternalDate: date.Add(time.Duration(i) * time.Minute)}
		if i%3 == 0 {
			m.Flags = []migrate.Flag{migrate.FlagSeen}
		}
		if i%2 == 0 {
			fx.Folders[0].Messages = append(fx.Folders[0].Messages, m)
		} else {
			bulk.Messages = append(bulk.Messages, m)
		}
	}
	fx.Folders = append(fx.Folders, bulk)
	payloads := map[string][]byte{}
	big := FixtureFolder{Path: []string{"Large"}}
	for i, size := range large {
		raw, payload := BulkMessage(10000+i, 0, size)
		m := FixtureMessage{Raw: raw, InternalDate: date.Add(time.Duration(i) * time.Hour), Flags: []migrate.Flag{migrate.FlagSeen}}
		big.Messages = append(big.Messages, m)
		payloads[m.MessageID()] = payload
	}
	if len(big.Messages) > 0 {
		fx.Folders = append(fx.Folders, big)
	}
	return fx, payloads
}
