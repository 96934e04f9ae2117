/** `kvroute doctor` as a library. */
export { runDoctor, type DoctorOptions } from './run-doctor.js';
export { runChecks, DOCTOR_THRESHOLDS, type CheckInput } from './checks.js';
export { formatDoctorReport, doctorJson } from './format-report.js';
export type * from './doctor-types.js';
