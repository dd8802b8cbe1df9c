/*
 * commands.h — subcommands of the `loupe` program, one function each.
 *
 * Every command takes the arguments that follow the program name
 * (argv[0] is the command's own name, e.g. "inspect") and returns the
 * process exit status: 0 on success, 2 on bad usage or an invalid input
 * file (after printing "loupe: FILE: message" on stderr).
 */
#ifndef LOUPE_COMMANDS_H
#define LOUPE_COMMANDS_H

/* loupe inspect FILE.lpw [--verify] [--json]
 * Prints the metadata (every key with its value) and the tensor table
 * (name, dtype, shape, file offset, bytes, CRC32C) of a weight file; with
 * --verify checks every payload CRC and prints "verify: all N tensors OK";
 * with --json prints one JSON object instead, nothing abbreviated.
 * tools/cmd_inspect.c */
int cmd_inspect(int argc, char **argv);

/* The loupe program (tools/loupe.c): argv[0] is the program name, argv[1]
 * the command. main() only calls it; compiled with -DLOUPE_NO_MAIN the
 * file has no main, for tests/fuzz/fuzz_cli.c. */
int loupe_main(int argc, char **argv);

#endif /* LOUPE_COMMANDS_H */
