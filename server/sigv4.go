package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	sigAlgorithm = "AWS4-HMAC-SHA256"
	sigService   = "rekognition"
	amzDateFmt   = "20060102T150405Z"
)

// signer recomputes signatures; the SDK's own signer is the reference
// implementation every client agrees with.
var signer = v4.NewSigner()

// sigAuth is a parsed Authorization header.
type sigAuth struct {
	keyID, date, region, service string
	signedHeaders                []string
	signature                    string
}

func sigError(format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: CodeInvalidSignature, Message: fmt.Sprintf(format, args...)}
}

// sigCheck is a request whose signature headers passed the checks that need
// no body: form, known key, service and date.
type sigCheck struct {
	auth   *sigAuth
	secret string
	time   time.Time
}

// authenticate checks what r's AWS Signature Version 4 headers can tell
// without the body, so a request that fails anyway is refused before its
// body is read. [sigCheck.verify] then checks the signature itself.
func (s *Server) authenticate(r *http.Request) (*sigCheck, *apiError) {
	authz := r.Header.Values("Authorization")
	switch {
	case len(authz) == 0 || authz[0] == "":
		return nil, sigError("the request is not signed: this server requires AWS Signature Version 4 (give your SDK a key pair from the server's credentials file)")
	case len(authz) > 1:
		return nil, sigError("the request has %d Authorization headers; send one", len(authz))
	}
	a, err := parseAuthorization(authz[0])
	if err != nil {
		return nil, err
	}
	secret, ok := s.opts.Credentials[a.keyID]
	if !ok {
		return nil, &apiError{Status: http.StatusBadRequest, Code: CodeUnrecognizedClient,
			Message: "The security token included in the request is invalid: unknown access key ID " + clip(a.keyID)}
	}
	if a.service != sigService {
		return nil, sigError("Credential should be scoped to correct service: '%s', not %s", sigService, clip(a.service))
	}
	if s.opts.Region != "" && a.region != s.opts.Region {
		return nil, sigError("Credential should be scoped to a valid region: this server's region is '%s', not %s", s.opts.Region, clip(a.region))
	}
	if err := checkSignedHeaders(r, a.signedHeaders); err != nil {
		return nil, err
	}
	rawDate := r.Header.Get("X-Amz-Date")
	t, perr := time.Parse(amzDateFmt, rawDate)
	if perr != nil {
		return nil, sigError("X-Amz-Date %s is not a date of the form %s", clip(rawDate), amzDateFmt)
	}
	if a.date != t.Format("20060102") {
		return nil, sigError("Credential should be scoped to a valid date: the scope says %s, X-Amz-Date says %s", clip(a.date), rawDate)
	}
	now, skew := s.now().UTC(), s.opts.MaxClockSkew
	switch {
	case t.Before(now.Add(-skew)):
		return nil, sigError("Signature expired: %s is now earlier than %s (%s - %v)",
			rawDate, now.Add(-skew).Format(amzDateFmt), now.Format(amzDateFmt), skew)
	case t.After(now.Add(skew)):
		return nil, sigError("Signature not yet current: %s is still later than %s (%s + %v)",
			rawDate, now.Add(skew).Format(amzDateFmt), now.Format(amzDateFmt), skew)
	}
	return &sigCheck{auth: a, secret: secret, time: t}, nil
}

// verify checks the signature of r with body, the whole request body. The
// canonical request always hashes the body actually received, so a body
// changed in transit fails whatever X-Amz-Content-Sha256 claims.
func (c *sigCheck) verify(r *http.Request, body []byte) *apiError {
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return sigError("X-Amz-Content-Sha256 does not match the body: the body was changed after it was signed, or the header is wrong")
	}
	want, err := recomputeSignature(r, c.auth, c.secret, c.time, payloadHash)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(c.auth.signature)) != 1 {
		return sigError("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return nil
}

// parseAuthorization parses
// "AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex".
func parseAuthorization(h string) (*sigAuth, *apiError) {
	alg, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if alg != sigAlgorithm {
		return nil, sigError("Authorization must use %s, not %s", sigAlgorithm, clip(alg))
	}
	a := &sigAuth{}
	parts := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, sigError("Authorization has a component without '=': %s", clip(part))
		}
		if k != "Credential" && k != "SignedHeaders" && k != "Signature" {
			return nil, sigError("Authorization has an unknown component %s", clip(k))
		}
		if _, dup := parts[k]; dup {
			// Which copy counts would be a guess, and a guess is a way in.
			return nil, sigError("Authorization has %s more than once", k)
		}
		parts[k] = v
	}
	cred, signed := parts["Credential"], parts["SignedHeaders"]
	a.signature = parts["Signature"]
	if cred == "" || signed == "" || a.signature == "" {
		return nil, sigError("Authorization must have Credential, SignedHeaders and Signature")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" {
		return nil, sigError("Credential must be AccessKeyId/yyyymmdd/region/service/aws4_request, not %s", clip(cred))
	}
	a.keyID, a.date, a.region, a.service = scope[0], scope[1], scope[2], scope[3]
	a.signedHeaders = strings.Split(signed, ";")
	for i, h := range a.signedHeaders {
		if h == "" || h != strings.ToLower(h) || i > 0 && a.signedHeaders[i-1] >= h {
			return nil, sigError("SignedHeaders must be distinct lowercase header names in sorted order")
		}
	}
	return a, nil
}

// checkSignedHeaders enforces what a signature must cover for the request
// to be the one its signer sent: host and the date, the content type, and
// every x-amz-* header, X-Amz-Target (the operation) above all. Otherwise a
// captured request could be replayed as another operation.
func checkSignedHeaders(r *http.Request, signed []string) *apiError {
	required := []string{"host", "x-amz-date"}
	for name := range r.Header {
		if h := strings.ToLower(name); h == "content-type" || strings.HasPrefix(h, "x-amz-") {
			required = append(required, h)
		}
	}
	slices.Sort(required)
	for _, h := range required {
		if _, found := slices.BinarySearch(signed, h); !found {
			return sigError("SignedHeaders must include %s (host, x-amz-date, content-type and every x-amz-* header sent)", h)
		}
	}
	return nil
}

// recomputeSignature signs a copy of r holding only the headers the client
// signed, at the client's time and scope, and returns the signature.
func recomputeSignature(r *http.Request, a *sigAuth, secret string, t time.Time, payloadHash string) (string, *apiError) {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	c := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}}
	creds := aws.Credentials{AccessKeyID: a.keyID, SecretAccessKey: secret}
	for _, h := range a.signedHeaders {
		switch h {
		case "host", "x-amz-date":
			// The signer writes these itself from Host and the time.
		case "content-length":
			c.ContentLength = r.ContentLength
		case "x-amz-security-token":
			creds.SessionToken = r.Header.Get(h)
		default:
			vals := r.Header.Values(h)
			if len(vals) == 0 {
				return "", sigError("signed header %s is missing from the request", clip(h))
			}
			c.Header[http.CanonicalHeaderKey(h)] = vals
		}
	}
	if err := signer.SignHTTP(r.Context(), creds, c, payloadHash, a.service, a.region, t); err != nil {
		return "", sigError("cannot verify the signature: %v", err)
	}
	got, err := parseAuthorization(c.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	if !slices.Equal(got.signedHeaders, a.signedHeaders) {
		// The SDK's signer never signs user-agent, expect, transfer-encoding
		// or x-amzn-trace-id; a client that does cannot be verified.
		return "", sigError("SignedHeaders %s cannot be verified (this server verifies %s); do not sign user-agent, expect, transfer-encoding or x-amzn-trace-id",
			strings.Join(a.signedHeaders, ";"), strings.Join(got.signedHeaders, ";"))
	}
	return got.signature, nil
}
