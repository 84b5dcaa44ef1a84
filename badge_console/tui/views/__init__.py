"""One module per view: tables, badges, dryrun, install, feed."""
