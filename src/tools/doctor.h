/* SPDX-License-Identifier: MIT */
/*
 * tools/doctor.h - "candor doctor": triage a failing name to its cause.
 */
#ifndef CND_TOOLS_DOCTOR_H
#define CND_TOOLS_DOCTOR_H

/* candor doctor [NAME...] [-conf FILE] [-server ADDR[:PORT]]
 *               [-ctl SOCKET] [-json]
 * @argv[0] is the first argument after "doctor".  Returns the exit
 * status: 0 healthy, 1 a problem found, 2 doctor could not run. */
int cnd_doctor_main(int argc, char **argv);

#endif
