// Package targetcheck holds the checks that mailferry's fault suites (the
// library's and the reference command's) make of a migration's outcome:
// a report with nothing failed, and target mailboxes in the Graph
// emulator where no message has two copies and every large attachment
// arrived whole, once. Tests only.
package targetcheck

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/migrate"
)

// Complete fails t unless every mailbox of rep completed with no folder
// failed, no problem reported and nothing failed or degraded, and returns
// the report's totals.
func Complete(t testing.TB, rep *migrate.Report) migrate.FolderReport {
	t.Helper()
	for _, mb := range rep.Mailboxes {
		if mb.Status != migrate.StatusCompleted {
			t.Errorf("%s: %s: %s", mb.Mailbox, mb.Status, mb.Error)
		}
		for _, f := range mb.Folders {
			if f.Error != "" {
				t.Errorf("%s: folder %s: %s", mb.Mailbox, f.Source, f.Error)
			}
		}
		for _, p := range mb.Problems {
			t.Errorf("%s: %s UID %d: %s: %s", mb.Mailbox, p.Folder, p.UID, p.Action, p.Reason)
		}
		if tot := mb.Totals(); tot.Failed != 0 || tot.Degraded != 0 {
			t.Errorf("%s: %d failed, %d degraded", mb.Mailbox, tot.Failed, tot.Degraded)
		}
	}
	return rep.Totals()
}

// UniqueWatermarks fails t if two items of user's mailbox in g carry one
// watermark (exchange.WatermarkProperty): two complete copies of one
// source message. Items without a watermark are left to the caller.
func UniqueWatermarks(t testing.TB, g *exchangetest.Server, user string) {
	t.Helper()
	seen := map[string]string{}
	for _, m := range g.Messages(user) {
		if wm, ok := m.ExtendedProperties[exchange.WatermarkProperty]; ok {
			if other, dup := seen[wm]; dup {
				t.Errorf("%s: items %s and %s both carry the watermark %s", user, other, m.ID, wm)
			}
			seen[wm] = m.ID
		}
	}
}

// Copies is UniqueWatermarks, and it also fails t if a message of
// payloads (large attachments by Message-ID, as migratetest.BulkFixture
// returns them) does not hold its attachment, named big-*, exactly once
// and byte for byte.
func Copies(t testing.TB, g *exchangetest.Server, user string, payloads map[string][]byte) {
	t.Helper()
	UniqueWatermarks(t, g, user)
	for _, m := range g.Messages(user) {
		payload, large := payloads[m.InternetMessageID]
		if !large {
			continue
		}
		n := 0
		for _, a := range m.Attachments {
			if strings.HasPrefix(a.Name, "big-") {
				n++
				if !bytes.Equal(a.Content, payload) {
					t.Errorf("%s: %s: attachment %s holds %d bytes, not the %d sent", user, m.InternetMessageID, a.Name, len(a.Content), len(payload))
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %s has %d copies of its large attachment, want 1", user, m.InternetMessageID, n)
		}
	}
}
