// Command imap2exchange migrates a batch of mailboxes from an IMAP server
// into Exchange Online, the way Exchange's own IMAP migration batch does:
// an IMAP endpoint, a CSV of mailboxes (EmailAddress, UserName, Password,
// UserRoot), a state file that makes every later run an incremental sync,
// and reports.
//
//	export MAILFERRY_CLIENT_SECRET=...      # the app registration's secret
//	go run ./examples/imap2exchange -imap imap.example.com:993 -csv batch.csv \
//	    -tenant <tenant id> -client-id <app id> -state batch.state -report report.json
//
// Run it again until cutover: only new messages and changed flags are
// carried. Secrets come from the environment or from files, never from
// flags (which other users of the machine can see): the app's client
// secret in MAILFERRY_CLIENT_SECRET, or its certificate and private key
// in the PEM file that -client-cert names, or MAILFERRY_GRAPH_TOKEN (an
// access token obtained elsewhere, or any token for the exchangetest
// emulator), which takes precedence over both.
//
// The app needs the Microsoft Graph application permissions
// Mail.ReadWrite and Mail-Advanced.ReadWrite.All, granted by an admin.
//
// The exit status is 0 when every mailbox completed (every message
// copied, or left out by -since or -before); 1 when the batch did not
// complete: a mailbox failed or was stopped (by -bad-item-limit, or by
// SIGINT or SIGTERM), some messages or folders were not copied (the
// report says which; a rerun retries them), or the batch could not start
// (a CSV with bad lines, each named; a credential, certificate or state
// file that cannot be used); and 2 when the command line is wrong (an
// unknown flag or argument, -csv or -imap missing, -tenant and
// -client-id missing without MAILFERRY_GRAPH_TOKEN, or a flag's value
// not understood), in which case nothing is read, written or sent.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/mailferry/mailferry/csvbatch"
	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/boltstate"
)

// main stops on Ctrl-C (SIGINT) and on SIGTERM (systemd's and
// Kubernetes' way to stop a service): the migration ends at once, the
// state keeps what was copied, the reports are written, and the exit code
// is 1. A second signal ends the process without waiting.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // from now on a signal has its default effect
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// config is the command line.
type config struct {
	csv, imapAddr, security, caFile, serverName string
	tenant, clientID, clientCert, graphURL      string
	state, report, reportCSV                    string
	mailboxes, badItemLimit, maxConnections     int
	since, before, receivedDates                string
	verbose, probe                              bool
}

// usageText is the head of the usage; exitText, its tail, the exit
// statuses (as the package documentation says them).
const (
	usageText = `Usage: imap2exchange -csv batch.csv -imap host:port [-tenant id -client-id id] [flags]

Migrates the mailboxes of the CSV from the IMAP server into Exchange Online.
Graph credentials: MAILFERRY_CLIENT_SECRET, or -client-cert, or MAILFERRY_GRAPH_TOKEN.

Flags:
`
	exitText = `
Exit status:
  0  every mailbox completed (every message copied, or left out by -since or -before)
  1  the batch did not complete: a mailbox failed or was stopped (-bad-item-limit,
     SIGINT, SIGTERM), messages or folders were not copied (see the report; run
     again to retry them), or the batch could not start (a bad CSV line, a
     credential, certificate or state file that cannot be used)
  2  the command line is wrong; nothing was done
`
)

// parse reads the command line. Its errors are usage errors: the usage has
// been written to stderr.
func parse(args []string, stderr io.Writer, getenv func(string) string) (*config, error) {
	var c config
	fs := flag.NewFlagSet("imap2exchange", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
		fmt.Fprint(stderr, exitText)
	}
	fs.StringVar(&c.csv, "csv", "", "the batch: a CSV with EmailAddress,UserName,Password[,UserRoot] (required)")
	fs.StringVar(&c.imapAddr, "imap", "", "the IMAP server, host:port (required)")
	fs.StringVar(&c.security, "security", "tls", "tls (port 993), starttls (port 143) or plaintext (sends passwords in clear)")
	fs.StringVar(&c.caFile, "ca", "", "a PEM file of root certificates to trust for the IMAP server (default: the system's)")
	fs.StringVar(&c.serverName, "server-name", "", "the name to check the IMAP server's certificate against (default: the host of -imap)")
	fs.StringVar(&c.tenant, "tenant", "", "the Microsoft Entra tenant id")
	fs.StringVar(&c.clientID, "client-id", "", "the app registration's client id")
	fs.StringVar(&c.clientCert, "client-cert", "", "a PEM file with the app's certificate and private key (instead of MAILFERRY_CLIENT_SECRET)")
	fs.StringVar(&c.graphURL, "graph-url", "", "the Microsoft Graph root (default https://graph.microsoft.com; an exchangetest emulator's URL for a trial)")
	fs.StringVar(&c.state, "state", "imap2exchange.state", "the state file that makes reruns incremental (one process at a time)")
	fs.StringVar(&c.report, "report", "", "write the report as JSON to this file")
	fs.StringVar(&c.reportCSV, "report-csv", "", "write the report as CSV (one row per folder) to this file")
	fs.IntVar(&c.mailboxes, "mailboxes", 4, "how many mailboxes to migrate at once")
	fs.IntVar(&c.badItemLimit, "bad-item-limit", 0, "stop a mailbox once more than this many of its messages failed, as Exchange's -BadItemLimit (0: no limit)")
	fs.StringVar(&c.since, "since", "", "copy only messages the IMAP server received on or after this date (YYYY-MM-DD, from 00:00 UTC)")
	fs.StringVar(&c.before, "before", "", "copy only messages the IMAP server received before this date (YYYY-MM-DD, from 00:00 UTC)")
	fs.IntVar(&c.maxConnections, "max-connections", 10, "the most IMAP connections open at once to the server, for the whole batch (providers limit them)")
	fs.StringVar(&c.receivedDates, "received-dates", "source", "source: every message keeps its IMAP date as received, with its exact MIME where the tenant allows both, else rebuilt by Exchange (signed and encrypted messages keep their MIME); import: every message up to 3 MB keeps its MIME byte for byte, Outlook shows the import time as received")
	fs.BoolVar(&c.probe, "probe", false, "only test each mailbox's IMAP login and report its folders, messages and size (the assessment), then stop")
	fs.BoolVar(&c.verbose, "v", false, "log every message copied")
	if err := fs.Parse(args); err != nil {
		return nil, err // the flag package has written the usage
	}
	if fs.NArg() > 0 {
		// The flags stop at the first word that is not one, and the
		// flags after it would be ignored.
		fs.Usage()
		return nil, fmt.Errorf("unexpected argument %q (a boolean flag takes a value as -flag=false)", fs.Arg(0))
	}
	if err := c.check(getenv); err != nil {
		fs.Usage()
		return nil, err
	}
	return &c, nil
}

// check reports what the command line lacks or what of its values is not
// understood, before anything is read, written or sent.
func (c *config) check(getenv func(string) string) error {
	switch {
	case c.csv == "" || c.imapAddr == "":
		return errors.New("-csv and -imap are required")
	case !c.probe && getenv("MAILFERRY_GRAPH_TOKEN") == "" && (c.tenant == "" || c.clientID == ""):
		return errors.New("-tenant and -client-id are required (or MAILFERRY_GRAPH_TOKEN)")
	}
	if _, err := security(c.security); err != nil {
		return err
	}
	if _, err := receivedDates(c.receivedDates); err != nil {
		return err
	}
	_, err := dateFilter(c)
	return err
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c, err := parse(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // -h: the usage asked for
	}
	if err != nil {
		fmt.Fprintln(stderr, "imap2exchange:", err)
		return 2
	}
	if err := migrateBatch(ctx, c, stdout, stderr, getenv); err != nil {
		fmt.Fprintln(stderr, "imap2exchange:", err)
		return 1
	}
	return 0
}

func migrateBatch(ctx context.Context, c *config, stdout, stderr io.Writer, getenv func(string) string) error {
	f, err := os.Open(c.csv)
	if err != nil {
		return err
	}
	rows, err := csvbatch.Read(f)
	f.Close()
	if err != nil {
		return err // every bad line named; nothing is migrated until the file is right
	}
	imapOpts, err := imapOptions(c)
	if err != nil {
		return err
	}
	if c.probe {
		return probe(ctx, rows, imapOpts, stdout)
	}
	cred, err := credential(c, getenv)
	if err != nil {
		return err
	}
	dates, err := receivedDates(c.receivedDates)
	if err != nil {
		return err
	}
	client, err := exchange.NewClient(&exchange.Options{Credential: cred, BaseURL: c.graphURL, ReceivedDates: dates})
	if err != nil {
		return err
	}
	filter, err := dateFilter(c)
	if err != nil {
		return err
	}
	state, err := boltstate.Open(c.state, nil)
	if err != nil {
		return err
	}
	defer state.Close()

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var jobs []migrate.Job
	for _, r := range rows {
		o := *imapOpts
		o.Username, o.Password, o.UserRoot = r.UserName, r.Password, r.UserRoot
		src := imapsrc.New(&o)
		defer src.Close()
		jobs = append(jobs, migrate.Job{Mailbox: r.EmailAddress, Source: src, Sink: client.Mailbox(r.EmailAddress)})
	}
	eng := migrate.NewEngine(&migrate.Options{
		MaxMailboxes: c.mailboxes,
		State:        state,
		Filter:       filter,
		BadItemLimit: c.badItemLimit,
		Logger:       logger,
		OnEvent:      progress(stdout, c.verbose),
	})
	fmt.Fprintf(stdout, "Migrating %d mailboxes from %s\n", len(jobs), c.imapAddr)
	stopped := context.AfterFunc(ctx, func() {
		fmt.Fprintln(stderr, "imap2exchange: stopping: what was copied is kept, and the reports are written; run again to go on")
	})
	defer stopped()
	report := eng.Run(ctx, jobs...)
	fmt.Fprintln(stdout)
	if err := report.WriteText(stdout); err != nil {
		return err
	}
	if err := writeReports(report, c); err != nil {
		return err
	}
	if report.Lost() {
		return errors.New("some messages or mailboxes were not migrated (see the report); run again to retry them")
	}
	return nil
}

// probe logs in to every mailbox of the batch and reports what it holds,
// the "test the connection" step of Exchange's migration endpoint.
func probe(ctx context.Context, rows []csvbatch.Row, imapOpts *imapsrc.Options, stdout io.Writer) error {
	failed := 0
	for _, r := range rows {
		o := *imapOpts
		o.Username, o.Password, o.UserRoot = r.UserName, r.Password, r.UserRoot
		res, err := imapsrc.Probe(ctx, &o)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%s: FAILED: %v\n", r.EmailAddress, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (%s, %s): %d folders, %d messages, %s\n", r.EmailAddress, res.Security, res.Mechanism,
			len(res.Folders), res.Messages, migrate.FormatBytes(res.Bytes))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d mailboxes failed the probe", failed, len(rows))
	}
	return nil
}

func imapOptions(c *config) (*imapsrc.Options, error) {
	o := &imapsrc.Options{Addr: c.imapAddr}
	if c.maxConnections > 0 {
		o.ServerLimit = imapsrc.NewServerLimit(c.maxConnections)
	}
	var err error
	if o.Security, err = security(c.security); err != nil {
		return nil, err
	}
	if c.caFile != "" || c.serverName != "" {
		o.TLSConfig = &tls.Config{ServerName: c.serverName}
		if c.caFile != "" {
			pem, err := os.ReadFile(c.caFile)
			if err != nil {
				return nil, fmt.Errorf("-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("-ca %s: no certificate found", c.caFile)
			}
			o.TLSConfig.RootCAs = pool
		}
	}
	return o, nil
}

// security is the value of -security.
func security(s string) (imapsrc.Security, error) {
	switch s {
	case "tls":
		return imapsrc.TLS, nil
	case "starttls":
		return imapsrc.StartTLS, nil
	case "plaintext":
		return imapsrc.Plaintext, nil
	}
	return 0, fmt.Errorf("-security %q: want tls, starttls or plaintext", s)
}

// receivedDates is the value of -received-dates.
func receivedDates(s string) (exchange.ReceivedDates, error) {
	switch s {
	case "source":
		return exchange.ReceivedDateFromSource, nil
	case "import":
		return exchange.ReceivedDateAtImport, nil
	}
	return 0, fmt.Errorf("-received-dates %q: want source or import", s)
}

// credential picks the Graph credential from the environment.
func credential(c *config, getenv func(string) string) (azcore.TokenCredential, error) {
	if tok := getenv("MAILFERRY_GRAPH_TOKEN"); tok != "" {
		return exchange.StaticToken(tok), nil
	}
	if c.tenant == "" || c.clientID == "" {
		return nil, errors.New("-tenant and -client-id are required (or MAILFERRY_GRAPH_TOKEN)")
	}
	if c.clientCert != "" {
		pem, err := os.ReadFile(c.clientCert)
		if err != nil {
			return nil, fmt.Errorf("-client-cert: %w", err)
		}
		certs, key, err := azidentity.ParseCertificates(pem, nil)
		if err != nil {
			return nil, fmt.Errorf("-client-cert %s: want a PEM file with the app's certificate and its private key: %w", c.clientCert, err)
		}
		return azidentity.NewClientCertificateCredential(c.tenant, c.clientID, certs, key, nil)
	}
	secret := getenv("MAILFERRY_CLIENT_SECRET")
	if secret == "" {
		return nil, errors.New("set MAILFERRY_CLIENT_SECRET (or use -client-cert)")
	}
	return azidentity.NewClientSecretCredential(c.tenant, c.clientID, secret, nil)
}

func dateFilter(c *config) (migrate.Filter, error) {
	var f migrate.Filter
	for _, d := range []struct {
		flag, value string
		into        *time.Time
	}{{"since", c.since, &f.Since}, {"before", c.before, &f.Before}} {
		if d.value == "" {
			continue
		}
		t, err := time.Parse(time.DateOnly, d.value)
		if err != nil {
			return f, fmt.Errorf("-%s %q: want YYYY-MM-DD", d.flag, d.value)
		}
		*d.into = t
	}
	return f, nil
}

// progress prints one line per folder (and per message with -v).
func progress(w io.Writer, verbose bool) func(migrate.Event) {
	return func(e migrate.Event) {
		switch e.Kind {
		case migrate.EventMailboxStarted:
			fmt.Fprintf(w, "%s: started\n", e.Mailbox)
		case migrate.EventFolderDone:
			if e.Err != nil {
				fmt.Fprintf(w, "%s: %s failed: %v\n", e.Mailbox, e.Folder, e.Err)
			} else if e.Count > 0 {
				fmt.Fprintf(w, "%s: %s -> %s: %d copied (%s)\n", e.Mailbox, e.Folder, e.Target, e.Count, migrate.FormatBytes(e.Bytes))
			}
		case migrate.EventMessageFailed:
			fmt.Fprintf(w, "%s: %s UID %d not copied: %v\n", e.Mailbox, e.Folder, e.UID, e.Err)
		case migrate.EventMessageDegraded:
			fmt.Fprintf(w, "%s: %s UID %d stored degraded, original attached: %v\n", e.Mailbox, e.Folder, e.UID, e.Err)
		case migrate.EventFlagsFailed:
			fmt.Fprintf(w, "%s: %s UID %d flags not carried (tried again next run): %v\n", e.Mailbox, e.Folder, e.UID, e.Err)
		case migrate.EventMessageCopied:
			if verbose {
				fmt.Fprintf(w, "%s: %s UID %d copied\n", e.Mailbox, e.Folder, e.UID)
			}
		case migrate.EventMailboxDone:
			if e.Err != nil {
				fmt.Fprintf(w, "%s: stopped: %v\n", e.Mailbox, e.Err)
			}
		}
	}
}

// writeReports writes the reports asked for. They name every mailbox and
// folder and the reasons of failures, so each is readable by its owner
// only (0600), whatever the umask and whatever an earlier file's mode:
// written to a new file in the same directory, then renamed over the
// path, so that a report is never half-written either.
func writeReports(r *migrate.Report, c *config) error {
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{c.report, r.WriteJSON}, {c.reportCSV, r.WriteCSV}} {
		if out.path == "" {
			continue
		}
		if err := writePrivate(out.path, out.write); err != nil {
			return err
		}
	}
	return nil
}

// writePrivate writes path with mode 0600 through write, atomically.
func writePrivate(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // once renamed, there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
