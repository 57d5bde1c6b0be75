/* The FUSE transport's floor on this machine: how long one request takes
 * from a process, through the kernel, to a server that does nothing and
 * back. The engine benchmark multiplies it by the requests that a cold
 * walk of the mount cannot avoid, to tell the part of the first `grep -r`
 * that no daemon could save.
 *
 * The server runs in a child process with libfuse's multi-threaded loop,
 * set up as infrafs's is, and answers every stat() of its one file with a
 * GETATTR (attribute timeout 0). The parent times batches of stat() calls.
 * Prints one JSON object: {"us_per_request": median, "batches": [...]}.
 *
 * Usage: fuse-roundtrip [STATS_PER_BATCH [BATCHES]] (default 20000 5). */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FILE_ID 2
#define MAX_BATCHES 100
#define MOUNT_WAIT_MS 10000

static void fill_attr(fuse_ino_t id, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = id;
    st->st_mode = id == FUSE_ROOT_ID ? S_IFDIR | 0555 : S_IFREG | 0444;
    st->st_nlink = 1;
}

static void rt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;

    if (parent != FUSE_ROOT_ID || strcmp(name, "f") != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    memset(&e, 0, sizeof e);
    e.ino = FILE_ID;
    fill_attr(FILE_ID, &e.attr);
    e.entry_timeout = 86400;
    e.attr_timeout = 0; /* every stat() asks the server */
    fuse_reply_entry(req, &e);
}

static void rt_getattr(fuse_req_t req, fuse_ino_t id, struct fuse_file_info *fi)
{
    struct stat st;

    (void)fi;
    fill_attr(id, &st);
    fuse_reply_attr(req, &st, 0);
}

static const struct fuse_lowlevel_ops rt_ops = {
    .lookup = rt_lookup,
    .getattr = rt_getattr,
};

/* The child: mount, say so on `ready`, serve until SIGTERM. */
static int serve(const char *mnt, int ready)
{
    char *argv[] = {"fuse-roundtrip", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(1, argv);
    struct fuse_session *se = fuse_session_new(&args, &rt_ops, sizeof rt_ops, NULL);
    struct fuse_loop_config *loop;
    int rc;

    if (!se || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, mnt) != 0) {
        fprintf(stderr,
                "fuse-roundtrip: cannot mount %s (is /dev/fuse there, and are "
                "we root?)\n",
                mnt);
        return 1;
    }
    if (write(ready, "1", 1) != 1)
        return 1;
    close(ready);
    loop = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(loop, 64); /* as infrafs's MIN_WORKER_THREADS */
    rc = fuse_session_loop_mt(se, loop);
    fuse_loop_cfg_destroy(loop);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return rc < 0 ? 1 : 0;
}

static double now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    long per_batch = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    long batches = argc > 2 ? strtol(argv[2], NULL, 10) : 5;
    char mnt[] = "/tmp/fuse-roundtrip.XXXXXX";
    char path[sizeof mnt + 2];
    double us[MAX_BATCHES], sorted[MAX_BATCHES];
    int ready[2], status = 0, rc = 0;
    char byte;
    struct stat st;
    pid_t child;

    if (per_batch < 1 || batches < 1 || batches > MAX_BATCHES) {
        fprintf(stderr, "usage: fuse-roundtrip [STATS_PER_BATCH [BATCHES <= %d]]\n", MAX_BATCHES);
        return 2;
    }
    if (!mkdtemp(mnt) || pipe(ready) != 0) {
        perror("fuse-roundtrip: set-up");
        return 1;
    }
    snprintf(path, sizeof path, "%s/f", mnt);
    child = fork();
    if (child < 0) {
        perror("fuse-roundtrip: fork");
        return 1;
    }
    if (child == 0) {
        close(ready[0]);
        _exit(serve(mnt, ready[1]));
    }
    close(ready[1]);
    if (read(ready[0], &byte, 1) != 1) {
        fprintf(stderr, "fuse-roundtrip: the server did not mount\n");
        waitpid(child, NULL, 0);
        rmdir(mnt);
        return 1;
    }
    close(ready[0]);
    for (int waited = 0; stat(path, &st) != 0; waited += 10) {
        if (waited >= MOUNT_WAIT_MS) {
            fprintf(stderr, "fuse-roundtrip: %s did not appear\n", path);
            rc = 1;
            break;
        }
        usleep(10000);
    }
    for (long b = 0; !rc && b < batches; b++) {
        double t0 = now_us();

        for (long i = 0; i < per_batch; i++) {
            if (stat(path, &st) != 0) {
                perror("fuse-roundtrip: stat");
                rc = 1;
                break;
            }
        }
        us[b] = (now_us() - t0) / (double)per_batch;
    }
    kill(child, SIGTERM);
    waitpid(child, &status, 0);
    rmdir(mnt);
    if (rc)
        return rc;
    memcpy(sorted, us, sizeof(double) * (size_t)batches);
    qsort(sorted, (size_t)batches, sizeof(double), by_value);
    printf("{\"us_per_request\": %.2f, \"batches\": [", sorted[batches / 2]);
    for (long b = 0; b < batches; b++)
        printf("%s%.2f", b ? ", " : "", us[b]);
    printf("]}\n");
    return 0;
}
