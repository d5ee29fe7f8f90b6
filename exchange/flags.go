package exchange

import (
	"context"
	"fmt"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/mailferry/mailferry/migrate"
)

// SetFlags implements migrate.FlagSetter: it sets the item's isRead,
// flag and categories from IMAP flags in one
// PATCH /users/{id}/messages/{id} (https://learn.microsoft.com/graph/api/message-update):
//
//   - \Seen sets isRead; its absence clears it.
//   - \Flagged sets flag.flagStatus to "flagged"; its absence to
//     "notFlagged".
//   - Keywords become categories, in order, without duplicates (compared
//     case-insensitively). Keywords that start with '$' ($Forwarded,
//     $MDNSent, $Junk, ...) are IMAP client state, not user labels, and are
//     left out. The item's categories are replaced: categories added in
//     Exchange since are lost.
//   - \Answered, \Draft and \Deleted have no counterpart here and are
//     ignored.
//
// Needs the Mail.ReadWrite permission.
func (mb *Mailbox) SetFlags(ctx context.Context, itemID string, flags []migrate.Flag) error {
	if err := mb.patchMessage(ctx, itemID, flagPatch(flags)); err != nil {
		return classify(fmt.Sprintf("set flags of message %s", itemID), err)
	}
	return nil
}

// flagPatch returns a message update with isRead, flag and categories set
// from flags (see SetFlags).
func flagPatch(flags []migrate.Flag) *models.Message {
	msg := models.NewMessage()
	read := hasFlag(flags, migrate.FlagSeen)
	msg.SetIsRead(&read)
	status := models.NOTFLAGGED_FOLLOWUPFLAGSTATUS
	if hasFlag(flags, migrate.FlagFlagged) {
		status = models.FLAGGED_FOLLOWUPFLAGSTATUS
	}
	flag := models.NewFollowupFlag()
	flag.SetFlagStatus(&status)
	msg.SetFlag(flag)
	msg.SetCategories(categories(flags))
	return msg
}

// categories returns the keywords of flags that become categories: not
// system flags, not '$'-prefixed, each once. It never returns nil, so
// that an empty list is sent and clears the categories.
func categories(flags []migrate.Flag) []string {
	out := []string{}
	for _, f := range flags {
		if !f.IsKeyword() || strings.HasPrefix(string(f), "$") || hasCategory(out, string(f)) {
			continue
		}
		out = append(out, string(f))
	}
	return out
}

func hasCategory(cats []string, c string) bool {
	for _, x := range cats {
		if strings.EqualFold(x, c) {
			return true
		}
	}
	return false
}

// hasFlag reports whether flags holds f, compared case-insensitively as
// IMAP does.
func hasFlag(flags []migrate.Flag, f migrate.Flag) bool {
	for _, g := range flags {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// patchMessage sends PATCH /users/{id}/messages/{id} with the set fields
// of msg. The error is the SDK's, unclassified.
func (mb *Mailbox) patchMessage(ctx context.Context, id string, msg models.Messageable) error {
	_, err := mb.c.graph.Users().ByUserId(mb.user).Messages().ByMessageId(id).Patch(ctx, msg, nil)
	return err
}
