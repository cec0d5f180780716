/* The subcommands of the symserve CLI, one file each (app/cmd_*.c). Each
 * returns the process exit code: 0 on success, 1 on a runtime failure, 2 on a
 * usage error. */
#ifndef SYM_COMMANDS_H
#define SYM_COMMANDS_H

int sym_cmd_predict(int argc, char **argv); /* app/cmd_predict.c */
int sym_cmd_play(int argc, char **argv);    /* app/cmd_play.c */
int sym_cmd_replay(int argc, char **argv);  /* app/cmd_replay.c */
int sym_cmd_serve(int argc, char **argv);   /* app/cmd_serve.c */
int sym_cmd_shard(int argc, char **argv);   /* app/cmd_shard.c */
int sym_cmd_convert(int argc, char **argv); /* app/cmd_weights.c: synthetic weights to safetensors */

#endif
