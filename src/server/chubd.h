/*
 * chubd.h - the self-hosted hub as a library, so that `chub serve` and the
 * `chubd` program run the same server.
 */
#ifndef CHUBD_H
#define CHUBD_H

/* Runs chubd with command-line arguments as `chubd` takes them (argv[0] is
 * the program name). Returns the process exit status. */
int chubd_main(int argc, char **argv);

#endif
