// Package csvbatch reads the CSV file of an IMAP migration batch in the
// format Exchange Online's IMAP migration takes: a header row, then one
// row per mailbox with the columns EmailAddress (the target mailbox),
// UserName and Password (the IMAP login) and, optionally, UserRoot (the
// user's folder tree when an administrator's credentials are used).
// Columns may come in any order and in any case; other columns are kept.
//
// See https://learn.microsoft.com/exchange/mailbox-migration/migrating-imap-mailboxes/migrate-other-types-of-imap-mailboxes
// ("CSV files for IMAP migration batches").
//
// A malformed row yields an error that names its line; passwords never
// appear in errors or in a Row's String.
package csvbatch

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
)

// Row is one mailbox of a batch.
type Row struct {
	// Line is the row's line number in the file (the header is line 1).
	Line int
	// EmailAddress is the target Exchange Online mailbox.
	EmailAddress string
	// UserName and Password log in to the IMAP server. UserName may be an
	// admin form such as Dovecot's "user*admin".
	UserName string
	Password string
	// UserRoot is the user's root folder for admin access, or "".
	UserRoot string
	// Extra holds the other columns by their header name.
	Extra map[string]string
}

// String describes the row without its password.
func (r Row) String() string {
	s := fmt.Sprintf("line %d: %s (login %s)", r.Line, r.EmailAddress, r.UserName)
	if r.UserRoot != "" {
		s += ", root " + r.UserRoot
	}
	return s
}

// LineError is an error in one line of the file.
type LineError struct {
	Line int
	Err  error
}

// Error implements error.
func (e *LineError) Error() string { return fmt.Sprintf("csvbatch: line %d: %v", e.Line, e.Err) }

// Unwrap returns the underlying error.
func (e *LineError) Unwrap() error { return e.Err }

// ErrMissingColumn is returned when the header lacks a required column.
var ErrMissingColumn = errors.New("missing required column")

var required = []string{"EmailAddress", "UserName", "Password"}

// Read parses a whole batch. It returns every valid row and, joined in one
// error, a LineError for every malformed row (missing field, invalid
// address, a mailbox listed twice), so that a file is fixed in one pass.
// A missing required column or unreadable CSV is an error on its own.
func Read(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("csvbatch: empty file: %w", ErrMissingColumn)
	}
	if err != nil {
		return nil, fmt.Errorf("csvbatch: %w", redact(err))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) // Excel writes a BOM
		col[strings.ToLower(h)] = i
		header[i] = h
	}
	for _, name := range required {
		if _, ok := col[strings.ToLower(name)]; !ok {
			return nil, &LineError{Line: 1, Err: fmt.Errorf("%w %s (header is %q)", ErrMissingColumn, name, strings.Join(header, ","))}
		}
	}
	field := func(rec []string, name string) string {
		if i, ok := col[strings.ToLower(name)]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var rows []Row
	var errs []error
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var perr *csv.ParseError
			if errors.As(err, &perr) {
				line = perr.Line
			}
			errs = append(errs, &LineError{Line: line, Err: redact(err)})
			if perr == nil {
				break
			}
			continue
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		row := Row{Line: line, EmailAddress: field(rec, "EmailAddress"), UserName: field(rec, "UserName"),
			Password: field(rec, "Password"), UserRoot: field(rec, "UserRoot")}
		// The password is taken as written: spaces may be part of it.
		if i := col["password"]; i < len(rec) {
			row.Password = rec[i]
		}
		for i, h := range header {
			switch strings.ToLower(h) {
			case "emailaddress", "username", "password", "userroot":
			default:
				if i < len(rec) {
					if row.Extra == nil {
						row.Extra = map[string]string{}
					}
					row.Extra[h] = rec[i]
				}
			}
		}
		if err := row.validate(); err != nil {
			errs = append(errs, &LineError{Line: line, Err: err})
			continue
		}
		key := strings.ToLower(row.EmailAddress)
		if first, dup := seen[key]; dup {
			errs = append(errs, &LineError{Line: line, Err: fmt.Errorf("%s is already listed on line %d", row.EmailAddress, first)})
			continue
		}
		seen[key] = line
		rows = append(rows, row)
	}
	return rows, errors.Join(errs...)
}

func (r Row) validate() error {
	var missing []string
	if r.EmailAddress == "" {
		missing = append(missing, "EmailAddress")
	}
	if r.UserName == "" {
		missing = append(missing, "UserName")
	}
	if r.Password == "" {
		missing = append(missing, "Password")
	}
	if len(missing) > 0 {
		return fmt.Errorf("empty %s", strings.Join(missing, ", "))
	}
	if a, err := mail.ParseAddress(r.EmailAddress); err != nil || a.Address != r.EmailAddress {
		return fmt.Errorf("EmailAddress %q is not an email address", r.EmailAddress)
	}
	return nil
}

// redact drops the CSV reader's quoting of the offending text, which may
// hold a password, keeping only the kind of error.
func redact(err error) error {
	var perr *csv.ParseError
	if errors.As(err, &perr) {
		return perr.Err
	}
	return err
}
