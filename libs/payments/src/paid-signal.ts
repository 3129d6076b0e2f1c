import { Injectable, Logger } from '@nestjs/common';

/**
 * Tells this process that an order has just been paid (after the commit that recorded it), so the order
 * sync can close the order's other attempts at their channels right away instead of at its next pass.
 * In-process only: if the process dies first, the committed `next_sync_at = now()` marks let any
 * process's sync job do it.
 */
@Injectable()
export class PaidSignal {
  private readonly logger = new Logger('PaidSignal');
  private readonly handlers: Array<(orderPk: string) => Promise<unknown>> = [];

  on(handler: (orderPk: string) => Promise<unknown>): void {
    this.handlers.push(handler);
  }

  emit(orderPk: string): void {
    for (const handler of this.handlers) {
      handler(orderPk).catch((err: unknown) =>
        this.logger.warn(`closing the other attempts of a paid order failed: ${(err as Error).message}`),
      );
    }
  }
}
