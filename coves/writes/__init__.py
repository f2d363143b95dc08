"""What signed-in users change through Coves: records written into their own
repositories (votes, comments, subscriptions, blocks, profile), account
sign-up on the instance PDS, and reports to the instance's admins.
See docs/writes.md."""
