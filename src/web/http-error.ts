/**
 * An error a route throws on purpose, with the status and the message the caller should see. The error
 * handler (server.ts) passes its message on even for a 5xx (a gateway that did not answer, a broker that
 * refused): it was written for the user. Any other exception with a 5xx is answered "internal error".
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
