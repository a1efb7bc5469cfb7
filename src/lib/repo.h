/* repo.h: the library's side of xmc/repo.h: the one function that replaces a repository's CURRENT, which the
 * model writer's commit and the public xmc_repo_set_current both use. */
#ifndef XMCI_REPO_H
#define XMCI_REPO_H

#include "xmc/repo.h"

/* Replaces <repo>/CURRENT with a file naming version: temporary file, fsync, rename, fsync of the directory.
 * Checks nothing about the version. XMC_ERR_IO; on failure CURRENT is as it was. */
xmc_err xmci_repo_write_current(const char *repo, const char *version, xmc_error *err);

#endif
