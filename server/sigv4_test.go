package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// skewedSigner signs as if the client's clock were off by skew.
type skewedSigner struct{ skew time.Duration }

func (s skewedSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, t time.Time, optFns ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, creds, r, payloadHash, service, region, t.Add(s.skew), optFns...)
}

// tamperingClient changes the body after the SDK signed it, keeping its
// length, as a man in the middle would.
type tamperingClient struct{ from, to string }

func (c tamperingClient) Do(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	b = bytes.Replace(b, []byte(c.from), []byte(c.to), 1)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return http.DefaultClient.Do(r)
}

// TestSigV4SDK signs with the real client: the right keys pass; a wrong
// secret, an unknown key, a skewed clock or a body changed in transit fail
// with the codes AWS uses.
func TestSigV4SDK(t *testing.T) {
	_, ts := newServer(t, &server.Options{Credentials: testCreds})
	ctx := context.Background()
	_, err := newClient(ts.URL, testKeyID, testSecret).CreateCollection(ctx, &rekognition.CreateCollectionInput{CollectionId: aws.String("aaaa")})
	require.NoError(t, err)

	tests := []struct {
		name   string
		client *rekognition.Client
		// wantCode is "" for success.
		wantCode, wantMessage string
	}{
		{"right key", newClient(ts.URL, testKeyID, testSecret), "", ""},
		{"second profile's key", newClient(ts.URL, "AKIDOTHER", "other-secret"), "", ""},
		{"clock 10 min slow is within skew", newClient(ts.URL, testKeyID, testSecret, func(o *rekognition.Options) {
			o.HTTPSignerV4 = skewedSigner{-10 * time.Minute}
		}), "", ""},
		{"wrong secret", newClient(ts.URL, testKeyID, "not-the-secret"), server.CodeInvalidSignature, "signature we calculated does not match"},
		{"unknown key", newClient(ts.URL, "AKIDUNKNOWN", testSecret), server.CodeUnrecognizedClient, "security token included in the request is invalid"},
		{"clock 20 min slow", newClient(ts.URL, testKeyID, testSecret, func(o *rekognition.Options) {
			o.HTTPSignerV4 = skewedSigner{-20 * time.Minute}
		}), server.CodeInvalidSignature, "Signature expired"},
		{"clock 20 min fast", newClient(ts.URL, testKeyID, testSecret, func(o *rekognition.Options) {
			o.HTTPSignerV4 = skewedSigner{20 * time.Minute}
		}), server.CodeInvalidSignature, "Signature not yet current"},
		{"body changed after signing", newClient(ts.URL, testKeyID, testSecret, func(o *rekognition.Options) {
			o.HTTPClient = tamperingClient{`"aaaa"`, `"bbbb"`}
		}), server.CodeInvalidSignature, "signature we calculated does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.client.DescribeCollection(ctx, &rekognition.DescribeCollectionInput{CollectionId: aws.String("aaaa")})
			if tt.wantCode == "" {
				require.NoError(t, err)
				assert.Equal(t, int64(0), aws.ToInt64(out.FaceCount))
				return
			}
			var apiErr smithy.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.wantCode, apiErr.ErrorCode())
			assert.Contains(t, apiErr.ErrorMessage(), tt.wantMessage)
		})
	}
}

// signedRequest builds a request to the API signed with v4.Signer at time t
// for region eu-west-3, after edit (if any) changed the request.
func signedRequest(t *testing.T, url, keyID, secret, service string, at time.Time, body string, edit func(*http.Request)) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "RekognitionService.ListCollections")
	if edit != nil {
		edit(req)
	}
	sum := sha256.Sum256([]byte(body))
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret, SessionToken: req.Header.Get("X-Amz-Security-Token")},
		req, hex.EncodeToString(sum[:]), service, "eu-west-3", at))
	return req
}

// TestSigV4Raw covers what the SDK never sends: missing or malformed
// Authorization, other services, extra signed headers, payload hashes,
// requests changed after signing.
func TestSigV4Raw(t *testing.T) {
	_, ts := newServer(t, &server.Options{Credentials: testCreds})
	now := time.Now()
	const body = `{"MaxResults": 10}`
	sign := func(edit func(*http.Request)) *http.Request {
		return signedRequest(t, ts.URL, testKeyID, testSecret, "rekognition", now, body, edit)
	}
	withAuth := func(v string) *http.Request {
		r := sign(nil)
		r.Header.Set("Authorization", v)
		return r
	}
	tests := []struct {
		name     string
		req      *http.Request
		wantCode string // "" for success
	}{
		{"signed", sign(nil), ""},
		{"extra signed header", sign(func(r *http.Request) { r.Header.Set("X-Custom", "  two   spaces ") }), ""},
		{"session token", sign(func(r *http.Request) { r.Header.Set("X-Amz-Security-Token", "tok") }), ""},
		{"matching X-Amz-Content-Sha256", sign(func(r *http.Request) {
			sum := sha256.Sum256([]byte(body))
			r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
		}), ""},
		{"wrong X-Amz-Content-Sha256", sign(func(r *http.Request) {
			r.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64))
		}), server.CodeInvalidSignature},
		{"other service", signedRequest(t, ts.URL, testKeyID, testSecret, "s3", now, body, nil), server.CodeInvalidSignature},
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, ts.URL+"/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			r.Header.Set("X-Amz-Target", "RekognitionService.ListCollections")
			return r
		}(), server.CodeInvalidSignature},
		{"target changed after signing", func() *http.Request {
			r := sign(nil)
			r.Header.Set("X-Amz-Target", "RekognitionService.ListUsers")
			return r
		}(), server.CodeInvalidSignature},
		{"date changed after signing", func() *http.Request {
			r := sign(nil)
			r.Header.Set("X-Amz-Date", now.Add(time.Second).UTC().Format("20060102T150405Z"))
			return r
		}(), server.CodeInvalidSignature},
		{"signed header removed", func() *http.Request {
			r := sign(func(r *http.Request) { r.Header.Set("X-Custom", "v") })
			r.Header.Del("X-Custom")
			return r
		}(), server.CodeInvalidSignature},
		{"other algorithm", func() *http.Request {
			r := sign(nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
			return r
		}(), server.CodeInvalidSignature},
		{"no Signature", func() *http.Request {
			r := sign(nil)
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a[:strings.Index(a, ", Signature=")])
			return r
		}(), server.CodeInvalidSignature},
		{"short credential", withAuth("AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20260101/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"), server.CodeInvalidSignature},
		{"host not signed", func() *http.Request {
			r := sign(nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=", "SignedHeaders=a;", 1))
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";host;", ";", 1))
			return r
		}(), server.CodeInvalidSignature},
		{"scope date differs from X-Amz-Date", func() *http.Request {
			r := sign(nil)
			day := now.UTC().Format("20060102")
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/"+day+"/", "/19990101/", 1))
			return r
		}(), server.CodeInvalidSignature},
		{"garbage date", func() *http.Request {
			r := sign(nil)
			r.Header.Set("X-Amz-Date", "yesterday")
			return r
		}(), server.CodeInvalidSignature},
		{"unsorted SignedHeaders", withAuth("AWS4-HMAC-SHA256 Credential=" + testKeyID + "/20260101/us-east-1/rekognition/aws4_request, SignedHeaders=x-amz-date;host, Signature=00"), server.CodeInvalidSignature},
		{"component without =", withAuth("AWS4-HMAC-SHA256 Credential"), server.CodeInvalidSignature},
		{"unknown key", signedRequest(t, ts.URL, "AKIDNOPE", testSecret, "rekognition", now, body, nil), server.CodeUnrecognizedClient},
		{"x-amz header added after signing", func() *http.Request {
			r := sign(nil)
			r.Header.Set("X-Amz-Anything", "v")
			return r
		}(), server.CodeInvalidSignature},
		{"content type not signed", func() *http.Request {
			r := sign(func(r *http.Request) { r.Header.Del("Content-Type") })
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
			return r
		}(), server.CodeInvalidSignature},
		{"Signature twice", func() *http.Request {
			r := sign(nil)
			a := r.Header.Get("Authorization")
			r.Header.Set("Authorization", a+", Signature="+a[strings.Index(a, "Signature=")+len("Signature="):])
			return r
		}(), server.CodeInvalidSignature},
		{"SignedHeaders twice", func() *http.Request {
			r := sign(nil)
			a := r.Header.Get("Authorization")
			sh := a[strings.Index(a, "SignedHeaders="):]
			r.Header.Set("Authorization", a+", "+sh[:strings.Index(sh, ",")])
			return r
		}(), server.CodeInvalidSignature},
		{"unknown Authorization component", func() *http.Request {
			r := sign(nil)
			r.Header.Set("Authorization", r.Header.Get("Authorization")+", Extra=1")
			return r
		}(), server.CodeInvalidSignature},
		{"two Authorization headers", func() *http.Request {
			r := sign(nil)
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
			return r
		}(), server.CodeInvalidSignature},
		{"a signed header listed twice", func() *http.Request {
			r := sign(nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=", "SignedHeaders=content-length;", 1))
			return r
		}(), server.CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.req)
			assert.NotEmpty(t, r.RequestID)
			if tt.wantCode == "" {
				assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
				return
			}
			assert.Equal(t, http.StatusBadRequest, r.Status)
			assert.Equal(t, tt.wantCode, r.Code, "%s", r.Message)
			assert.Equal(t, tt.wantCode, r.Header.Get("X-Amzn-ErrorType"))
		})
	}
}

// TestSigV4Endpoints: /healthz never needs a signature; /metrics does unless
// UnsignedMetrics is set or it is served by MetricsHandler.
func TestSigV4Endpoints(t *testing.T) {
	get := func(t *testing.T, url string, sign bool) rawResponse {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		if sign {
			sum := sha256.Sum256(nil)
			require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
				req, hex.EncodeToString(sum[:]), "rekognition", "us-east-1", time.Now()))
		}
		return do(t, req)
	}
	_, ts := newServer(t, &server.Options{Credentials: testCreds})
	assert.Equal(t, http.StatusOK, get(t, ts.URL+"/healthz", false).Status)
	assert.Equal(t, server.CodeInvalidSignature, get(t, ts.URL+"/metrics", false).Code)
	m := get(t, ts.URL+"/metrics", true)
	assert.Equal(t, http.StatusOK, m.Status)
	assert.Contains(t, string(m.Body), "go_goroutines")

	_, open := newServer(t, &server.Options{Credentials: testCreds, UnsignedMetrics: true})
	assert.Equal(t, http.StatusOK, get(t, open.URL+"/metrics", false).Status)

	// The metrics handler, for a listener of its own, needs no signature
	// and serves nothing of the API.
	s, err := server.New(newEngine(t), &server.Options{Credentials: testCreds, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ms := httptest.NewServer(s.MetricsHandler())
	t.Cleanup(ms.Close)
	m = get(t, ms.URL+"/metrics", false)
	assert.Equal(t, http.StatusOK, m.Status)
	assert.Contains(t, string(m.Body), "go_goroutines")
	assert.Equal(t, http.StatusOK, get(t, ms.URL+"/healthz", false).Status)
	api := signedRequest(t, ms.URL, testKeyID, testSecret, "rekognition", time.Now(), `{}`, nil)
	assert.Equal(t, http.StatusNotFound, do(t, api).Status)
}

// TestSigV4OperationSwap: a signature that covers only host and X-Amz-Date
// cannot be reused for another operation by setting X-Amz-Target and the
// content type after signing: the request is refused and nothing changes.
func TestSigV4OperationSwap(t *testing.T) {
	e, ts := newServer(t, &server.Options{Credentials: testCreds})
	_, err := e.CreateCollection(context.Background(), &engine.CreateCollectionInput{CollectionId: "kept"})
	require.NoError(t, err)
	const body = `{"CollectionId":"kept"}`
	for _, target := range []string{"DescribeCollection", "DeleteCollection"} {
		t.Run(target, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, ts.URL+"/", strings.NewReader(body))
			require.NoError(t, err)
			sum := sha256.Sum256([]byte(body))
			require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
				req, hex.EncodeToString(sum[:]), "rekognition", "us-east-1", time.Now()))
			require.NotContains(t, req.Header.Get("Authorization"), "x-amz-target")
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "RekognitionService."+target)
			r := do(t, req)
			assert.Equal(t, server.CodeInvalidSignature, r.Code, "%s", r.Body)
		})
	}
	_, err = e.DescribeCollection(context.Background(), &engine.DescribeCollectionInput{CollectionId: "kept"})
	require.NoError(t, err, "the collection is still there")
}

// TestSigV4Region: with Options.Region set, only signatures scoped to that
// region verify; without it, any region does.
func TestSigV4Region(t *testing.T) {
	const body = `{}`
	tests := []struct {
		name, serverRegion string
		wantCode           string // "" for success
	}{
		{"any region", "", ""},
		{"pinned, same region", "eu-west-3", ""},
		{"pinned, other region", "us-east-1", server.CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ts := newServer(t, &server.Options{Credentials: testCreds, Region: tt.serverRegion})
			r := do(t, signedRequest(t, ts.URL, testKeyID, testSecret, "rekognition", time.Now(), body, nil))
			if tt.wantCode == "" {
				assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
				return
			}
			assert.Equal(t, tt.wantCode, r.Code, "%s", r.Body)
		})
	}
}
