package main

import (
	"context"
	"fmt"

	"github.com/facesearch/facesearch/engine"
)

const usersListSynopsis = `list --collection C [--max-items N] [--page-size N] [--starting-token T] [--output table|json]

Lists a collection's users in primary-key (creation) order, with the AWS
CLI's pagination flags: --page-size is how many users each ListUsers call
asks for (it changes the calls, not the output), --max-items is how many
users to print in all, and when there are more, the output ends with the
NextToken to pass to --starting-token to go on from there.`

// usersOutput is the JSON form of users list, as the AWS CLI prints it.
type usersOutput struct {
	Users     []engine.User `json:"Users"`
	NextToken string        `json:"NextToken,omitempty"`
}

func (m *Main) users(ctx context.Context, args []string) error {
	fs := m.newFlagSet("users", usersListSynopsis, examples(
		"facesearch users list --collection staff",
		"facesearch users list --collection staff --max-items 100 --output json",
		"facesearch users list --collection staff --max-items 100 --starting-token <NextToken>",
	))
	data := addDataFlag(fs)
	coll := addCollectionFlag(fs, "the collection `C` whose users to list (required)")
	maxItems := fs.Int("max-items", 0, "print at most `N` users, then the NextToken to resume with (default: all)")
	pageSize := fs.Int("page-size", 0, "users per ListUsers call, 1-500 (default 100)")
	startingToken := fs.String("starting-token", "", "resume after the listing that printed this NextToken `T`")
	output := addOutputFlag(fs)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fs.Usage()
		return nil
	}
	if len(args) == 0 || args[0] != "list" {
		return usageErrorf(fs, "want a subcommand: list")
	}
	if err := parseNoArgs(fs, args[1:]); err != nil {
		return err
	}
	switch {
	case *coll == "":
		return usageErrorf(fs, "--collection is required")
	case *maxItems < 0:
		return usageErrorf(fs, "--max-items is %d; want 1 or more (0 means all)", *maxItems)
	case flagWasSet(fs, "page-size") && (*pageSize < 1 || *pageSize > 500):
		return usageErrorf(fs, "--page-size is %d; want 1 to 500", *pageSize)
	}
	if err := checkOutput(fs, *output); err != nil {
		return err
	}
	e, err := openStore(*data, true)
	if err != nil {
		return err
	}
	defer e.Close()
	p := engine.NewListUsersPaginator(e, &engine.ListUsersInput{CollectionId: *coll}, func(o *engine.ListUsersPaginatorOptions) {
		o.PageSize = int32(*pageSize)
		o.MaxItems = *maxItems
		o.StartingToken = *startingToken
	})
	out := usersOutput{Users: []engine.User{}}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		out.Users = append(out.Users, page.Users...)
	}
	out.NextToken = p.NextToken()
	if *output == "json" {
		return writeJSON(m.Stdout, out)
	}
	tw := newTable(m.Stdout)
	fmt.Fprintln(tw, "USER_ID\tSTATUS")
	for _, u := range out.Users {
		fmt.Fprintf(tw, "%s\t%s\n", u.UserId, u.UserStatus)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if out.NextToken != "" {
		fmt.Fprintf(m.Stdout, "NextToken: %s\n", out.NextToken)
	}
	return nil
}
